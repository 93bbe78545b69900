package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// TestKubernetesExampleIsGuarded keeps deploy/container/kubernetes.yaml
// safe to copy: its plan parses; the daemon answers only with tokens
// that come from a Secret; and it listens on loopback, or a
// NetworkPolicy selecting its pods admits only named peers to the port.
func TestKubernetesExampleIsGuarded(t *testing.T) {
	b, err := os.ReadFile("../../deploy/container/kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type object struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
		Spec struct {
			PodSelector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"podSelector"`
			PolicyTypes []string `yaml:"policyTypes"`
			Ingress     []struct {
				From  []map[string]any `yaml:"from"`
				Ports []struct {
					Port any `yaml:"port"`
				} `yaml:"ports"`
			} `yaml:"ingress"`
			Template struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
				Spec struct {
					Containers []struct {
						EnvFrom []struct {
							SecretRef *struct {
								Name string `yaml:"name"`
							} `yaml:"secretRef"`
						} `yaml:"envFrom"`
						Env []struct {
							Name      string `yaml:"name"`
							ValueFrom *struct {
								SecretKeyRef *struct{} `yaml:"secretKeyRef"`
							} `yaml:"valueFrom"`
						} `yaml:"env"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	var objs []object
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("kubernetes.yaml: %v", err)
		}
		objs = append(objs, o)
	}
	var p *plan.Plan
	var deployment, policy *object
	for i, o := range objs {
		switch o.Kind {
		case "ConfigMap":
			if src, ok := o.Data["plan.yaml"]; ok {
				if p, err = plan.Parse("kubernetes.yaml:plan.yaml", []byte(src), func(string) string { return "" }); err != nil {
					t.Fatalf("the example's plan: %v", err)
				}
			}
		case "Deployment":
			deployment = &objs[i]
		case "NetworkPolicy":
			policy = &objs[i]
		}
	}
	if p == nil || deployment == nil {
		t.Fatal("kubernetes.yaml has no ConfigMap with plan.yaml or no Deployment")
	}

	// Both tokens, each from the environment the Secret fills.
	fromSecret := map[string]bool{}
	for _, c := range deployment.Spec.Template.Spec.Containers {
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				fromSecret["*"] = true
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				fromSecret[e.Name] = true
			}
		}
	}
	for name, ref := range map[string]string{"api_token": p.Daemon.APIToken, "api_read_token": p.Daemon.APIReadToken} {
		v, ok := strings.CutPrefix(ref, "env:")
		if !ok || !(fromSecret["*"] || fromSecret[v]) {
			t.Errorf("daemon.%s is %q: want env:VAR with VAR from a Secret", name, ref)
		}
	}

	// Loopback, or a NetworkPolicy on the daemon's pods and port.
	host, port, err := net.SplitHostPort(p.Daemon.Listen)
	if err != nil {
		t.Fatalf("daemon.listen %q: %v", p.Daemon.Listen, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return
	}
	if policy == nil {
		t.Fatalf("daemon.listen %q is not loopback and no NetworkPolicy guards it", p.Daemon.Listen)
	}
	for k, v := range policy.Spec.PodSelector.MatchLabels {
		if deployment.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("the NetworkPolicy selects %s=%s, which the daemon's pods do not carry", k, v)
		}
	}
	if len(policy.Spec.PodSelector.MatchLabels) == 0 {
		t.Error("the NetworkPolicy selects every pod of the namespace, not the daemon's")
	}
	ingress := false
	for _, ty := range policy.Spec.PolicyTypes {
		ingress = ingress || ty == "Ingress"
	}
	if !ingress {
		t.Error("the NetworkPolicy does not restrict ingress")
	}
	for i, r := range policy.Spec.Ingress {
		if len(r.From) == 0 {
			t.Errorf("ingress rule %d admits every source", i)
		}
		for _, f := range r.From {
			if len(f) == 0 {
				t.Errorf("ingress rule %d has an empty peer, which admits everything", i)
			}
		}
		found := false
		for _, pt := range r.Ports {
			found = found || fmt.Sprint(pt.Port) == port
		}
		if !found {
			t.Errorf("ingress rule %d does not name the daemon's port %s", i, port)
		}
	}
}
