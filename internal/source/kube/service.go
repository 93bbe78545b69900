package kube

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Database is a database running in the cluster, backed up through its
// Service as part of a Kubernetes backup (into databases/<ns>/<service>/).
type Database struct {
	Kind      string // "postgres"
	Namespace string
	Service   string
	Port      string // a port name or number of the Service; "" = its first
	User      string
	// Secret and Key name the password: a key of a Secret in the
	// database's namespace. Empty Secret: no password.
	Secret, Key string
	Databases   []string // empty: every database
}

// Dir is where the database's files go in the snapshot tree.
func (d Database) Dir() string { return "databases/" + d.Namespace + "/" + d.Service }

// ParseDatabase parses
//
//	postgres:NAMESPACE/SERVICE[:PORT][,user=U][,secret=NAME][,key=KEY][,db=NAME]...
//
// key defaults to "password"; db may repeat.
func ParseDatabase(s string) (Database, error) {
	var d Database
	head, opts, _ := strings.Cut(s, ",")
	kind, target, ok := strings.Cut(head, ":")
	if !ok {
		return d, fmt.Errorf("database %q: want postgres:NAMESPACE/SERVICE[:PORT][,user=U][,secret=NAME][,key=KEY][,db=NAME]", s)
	}
	switch kind {
	case "postgres", "postgresql":
		d.Kind = "postgres"
	default:
		return d, fmt.Errorf("database %q: kind %q is not supported (postgres)", s, kind)
	}
	ns, svc, ok := strings.Cut(target, "/")
	if !ok {
		return d, fmt.Errorf("database %q: want NAMESPACE/SERVICE after \"%s:\"", s, kind)
	}
	svc, d.Port, _ = strings.Cut(svc, ":")
	d.Namespace, d.Service = ns, svc
	if err := validName(ns); err != nil {
		return d, fmt.Errorf("database %q: %w", s, err)
	}
	if err := validName(svc); err != nil {
		return d, fmt.Errorf("database %q: service: %w", s, err)
	}
	if opts != "" {
		for _, kv := range strings.Split(opts, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || v == "" {
				return d, fmt.Errorf("database %q: option %q: want key=value", s, kv)
			}
			switch k {
			case "user":
				d.User = v
			case "secret":
				d.Secret = v
			case "key":
				d.Key = v
			case "db":
				d.Databases = append(d.Databases, v)
			default:
				return d, fmt.Errorf("database %q: unknown option %q (user, secret, key, db)", s, k)
			}
		}
	}
	if d.Key == "" {
		d.Key = "password"
	}
	return d, nil
}

// ResolveService returns an address the service's port answers on: the
// external name of an ExternalName service; else a ready endpoint of the
// service (its EndpointSlices), which works inside the cluster and from
// wherever pod addresses are routed; else the service's cluster IP.
func ResolveService(ctx context.Context, c *Clients, ns, name, port string) (string, error) {
	svcGVR := schema.GroupVersionResource{Version: "v1", Resource: "services"}
	svc, err := c.Dynamic.Resource(svcGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("service %s/%s: %s", ns, name, apiMessage(err))
	}
	ports, _ := nested(svc.Object, "spec", "ports").([]any)
	var portName string
	var svcPort, targetPort int64
	for _, p := range ports {
		pm, _ := p.(map[string]any)
		n, _ := pm["name"].(string)
		num := toInt(pm["port"])
		if port == "" || port == n || port == strconv.FormatInt(num, 10) {
			portName, svcPort = n, num
			targetPort = toInt(pm["targetPort"])
			if targetPort == 0 {
				targetPort = num
			}
			break
		}
	}
	if svcPort == 0 {
		return "", fmt.Errorf("service %s/%s has no port %q", ns, name, port)
	}
	if nestedString(svc.Object, "spec", "type") == "ExternalName" {
		ext := nestedString(svc.Object, "spec", "externalName")
		if ext == "" {
			return "", fmt.Errorf("service %s/%s is ExternalName without a name", ns, name)
		}
		return net.JoinHostPort(ext, strconv.FormatInt(svcPort, 10)), nil
	}
	sliceGVR := schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	slices, err := c.Dynamic.Resource(sliceGVR).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + name})
	if err != nil && !apierrors.IsForbidden(err) && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("endpoints of service %s/%s: %s", ns, name, apiMessage(err))
	}
	if err == nil {
		for _, sl := range slices.Items {
			epPort := targetPort
			slPorts, _ := nested(sl.Object, "ports").([]any)
			for _, p := range slPorts {
				pm, _ := p.(map[string]any)
				if n, _ := pm["name"].(string); n == portName {
					epPort = toInt(pm["port"])
				}
			}
			eps, _ := nested(sl.Object, "endpoints").([]any)
			for _, ep := range eps {
				em, _ := ep.(map[string]any)
				if ready, ok := nested(em, "conditions", "ready").(bool); ok && !ready {
					continue
				}
				addrs, _ := em["addresses"].([]any)
				if len(addrs) > 0 && epPort > 0 {
					if a, _ := addrs[0].(string); a != "" {
						return net.JoinHostPort(a, strconv.FormatInt(epPort, 10)), nil
					}
				}
			}
		}
	}
	if ip := nestedString(svc.Object, "spec", "clusterIP"); ip != "" && ip != "None" {
		return net.JoinHostPort(ip, strconv.FormatInt(svcPort, 10)), nil
	}
	return "", fmt.Errorf("service %s/%s has no ready endpoint and no cluster IP", ns, name)
}

// SecretValue reads one key of a Secret.
func SecretValue(ctx context.Context, c *Clients, ns, name, key string) (string, error) {
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	s, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("secret %s/%s: %s", ns, name, apiMessage(err))
	}
	v, ok := nested(s.Object, "data", key).(string)
	if !ok {
		return "", fmt.Errorf("secret %s/%s has no key %q", ns, name, key)
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return "", fmt.Errorf("secret %s/%s key %q is not base64", ns, name, key)
	}
	return string(b), nil
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}
