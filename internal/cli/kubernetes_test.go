package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/operator"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// kubeFixtures is a namespace with the kinds of objects an application
// has, and a custom resource definition with two custom resources.
const kubeFixtures = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
          status:
            type: object
            properties:
              ready: {type: boolean}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: web}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: app, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: shop}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: app-reader, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects:
- {kind: ServiceAccount, name: app, namespace: shop}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop, labels: {app: web}}
data: {mode: production, "config.yaml": "a: 1\nb: [x, y]\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop}
type: Opaque
stringData: {password: "s3cr3t-Zq9-never-print"}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: app
      containers:
      - name: web
        image: registry.example/web:1.2.3
        ports: [{containerPort: 8080}]
        envFrom: [{configMapRef: {name: settings}}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: small, namespace: shop}
spec: {size: 3, color: red}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: huge, namespace: shop}
spec: {size: 40, color: blue}
`

// kubeClient applies and reads objects by GVK through the dynamic client.
type kubeClient struct {
	t   *testing.T
	dyn dynamic.Interface
}

var kubeGVR = map[string]schema.GroupVersionResource{
	"CustomResourceDefinition": {Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"},
	"Namespace":                {Version: "v1", Resource: "namespaces"},
	"ServiceAccount":           {Version: "v1", Resource: "serviceaccounts"},
	"Role":                     {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"},
	"RoleBinding":              {Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"},
	"ConfigMap":                {Version: "v1", Resource: "configmaps"},
	"Secret":                   {Version: "v1", Resource: "secrets"},
	"Service":                  {Version: "v1", Resource: "services"},
	"Deployment":               {Group: "apps", Version: "v1", Resource: "deployments"},
	"Widget":                   {Group: "example.com", Version: "v1", Resource: "widgets"},
}

func decodeYAMLDocs(t *testing.T, docs string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("fixture: %v\n%s", err, doc)
		}
		out = append(out, &unstructured.Unstructured{Object: obj})
	}
	return out
}

func (c *kubeClient) res(kind, ns string) dynamic.ResourceInterface {
	gvr, ok := kubeGVR[kind]
	if !ok {
		c.t.Fatalf("no resource for kind %s", kind)
	}
	if ns != "" {
		return c.dyn.Resource(gvr).Namespace(ns)
	}
	return c.dyn.Resource(gvr)
}

func (c *kubeClient) apply(objs []*unstructured.Unstructured) {
	c.t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		if _, err := c.res(o.GetKind(), o.GetNamespace()).Create(ctx, o.DeepCopy(), metav1.CreateOptions{}); err != nil {
			c.t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
		if o.GetKind() == "CustomResourceDefinition" {
			c.waitServed(o)
		}
	}
}

// waitServed waits until a new CRD's resource can be used.
func (c *kubeClient) waitServed(crd *unstructured.Unstructured) {
	c.t.Helper()
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: plural}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.dyn.Resource(gvr).List(context.Background(), metav1.ListOptions{Limit: 1})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("CRD %s not served: %v", crd.GetName(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *kubeClient) get(kind, ns, name string) *unstructured.Unstructured {
	c.t.Helper()
	o, err := c.res(kind, ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatalf("get %s %s/%s: %v", kind, ns, name, err)
	}
	return o
}

func (c *kubeClient) exists(kind, ns, name string) bool {
	c.t.Helper()
	_, err := c.res(kind, ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		c.t.Fatalf("get %s %s/%s: %v", kind, ns, name, err)
	}
	return true
}

func (c *kubeClient) delete(kind, ns, name string) {
	c.t.Helper()
	if err := c.res(kind, ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		c.t.Fatalf("delete %s %s/%s: %v", kind, ns, name, err)
	}
}

// comparable returns an object without what the server fills in, as the
// backup stores it, with the namespace made neutral.
func comparable(o *unstructured.Unstructured) map[string]any {
	obj := o.DeepCopy().Object
	gvr := kubeGVR[o.GetKind()]
	kube.Clean(obj, gvr.Group, gvr.Resource, false)
	unstructured.RemoveNestedField(obj, "metadata", "namespace")
	if o.GetKind() == "Namespace" {
		unstructured.RemoveNestedField(obj, "metadata", "name")
		unstructured.RemoveNestedField(obj, "metadata", "labels", "kubernetes.io/metadata.name")
	}
	if o.GetKind() == "RoleBinding" {
		unstructured.RemoveNestedField(obj, "subjects")
	}
	// Round trip through JSON so that number types agree.
	b, _ := json.Marshal(obj)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// namespacedFixtures are the fixtures' namespaced objects (kind, name).
func namespacedFixtures(objs []*unstructured.Unstructured) [][2]string {
	var out [][2]string
	for _, o := range objs {
		if o.GetNamespace() != "" {
			out = append(out, [2]string{o.GetKind(), o.GetName()})
		}
	}
	return out
}

// TestKubernetesBackupRestore backs up a namespace with a deployment, a
// service, config, a secret, RBAC, a CRD and custom resources from a real
// API server; deletes the objects; restores; compares every object field
// by field; then restores into a mapped namespace, over partly existing
// objects with --existing skip and update, with modifiers, as a dry run,
// and with an object the server now refuses.
func TestKubernetesBackupRestore(t *testing.T) {
	k := testsrv.Kube(t)
	dyn, err := dynamic.NewForConfig(k.Config())
	must(t, err)
	kc := &kubeClient{t: t, dyn: dyn}
	fixtures := decodeYAMLDocs(t, kubeFixtures)
	kc.apply(fixtures)
	objs := namespacedFixtures(fixtures)
	want := map[[2]string]map[string]any{}
	for _, o := range objs {
		want[o] = comparable(kc.get(o[0], "shop", o[1]))
	}
	wantNS := comparable(kc.get("Namespace", "", "shop"))

	e := initRepo(t)
	e.env["KUBECONFIG"] = k.Kubeconfig
	r := e.mustRun("--json", "backup", "kubernetes", "--include-namespaces", "shop", "--tag", "k8s")
	sum := r.Message(t, "summary")
	first := str(sum["snapshot_id"])
	if strings.Contains(r.Stdout+r.Stderr, "s3cr3t") || strings.Contains(r.Stdout+r.Stderr, "czNjcjN0") {
		t.Fatalf("the backup printed the secret:\n%s", r)
	}
	md, _ := sum["metadata"].(map[string]any)
	if md["kubernetes_cluster"] != "test" || md["kubernetes_objects"] == "0" {
		t.Errorf("metadata = %v", md)
	}

	t.Run("tree", func(t *testing.T) {
		r := e.mustRun("ls", first)
		for _, p := range []string{
			"/kubernetes.json",
			"/cluster/core/namespaces/shop.json",
			"/cluster/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com.json",
			"/namespaces/shop/apps/deployments/web.json",
			"/namespaces/shop/core/configmaps/settings.json",
			"/namespaces/shop/core/secrets/creds.json",
			"/namespaces/shop/core/services/web.json",
			"/namespaces/shop/core/serviceaccounts/app.json",
			"/namespaces/shop/rbac.authorization.k8s.io/rolebindings/app-reader.json",
			"/namespaces/shop/example.com/widgets/huge.json",
		} {
			if !strings.Contains(r.Stdout, p+"\n") {
				t.Errorf("ls lacks %s:\n%s", p, r.Stdout)
			}
		}
		// Only the selected namespace and what it needs.
		if strings.Contains(r.Stdout, "/namespaces/default") || strings.Contains(r.Stdout, "clusterroles") {
			t.Errorf("objects outside the selection were backed up:\n%s", r.Stdout)
		}
		dep := e.mustRun("dump", first, "/namespaces/shop/apps/deployments/web.json").Stdout
		for _, f := range []string{`"uid"`, `"resourceVersion"`, `"managedFields"`, `"creationTimestamp": "2`, `"status"`} {
			if strings.Contains(dep, f) {
				t.Errorf("stored deployment has %s:\n%s", f, dep)
			}
		}
		svc := e.mustRun("dump", first, "/namespaces/shop/core/services/web.json").Stdout
		if strings.Contains(svc, "clusterIP\"") {
			t.Errorf("stored service keeps its cluster IP:\n%s", svc)
		}
	})

	t.Run("unchanged second backup adds almost nothing", func(t *testing.T) {
		sum := e.mustRun("--json", "backup", "kubernetes", "--include-namespaces", "shop").Message(t, "summary")
		if added := num(sum["data_added"]); added > 2048 {
			t.Errorf("an unchanged cluster added %d bytes", added)
		}
	})

	t.Run("restore after deletion", func(t *testing.T) {
		for _, o := range objs {
			kc.delete(o[0], "shop", o[1])
		}
		kc.delete("CustomResourceDefinition", "", "widgets.example.com")
		waitGone(t, kc, "CustomResourceDefinition", "", "widgets.example.com")
		r := e.mustRun("restore", "kubernetes", first)
		if !strings.Contains(r.Stdout, "0 failed") {
			t.Errorf("summary:\n%s", r)
		}
		for _, o := range objs {
			got := comparable(kc.get(o[0], "shop", o[1]))
			if !reflect.DeepEqual(got, want[o]) {
				t.Errorf("%s %s restored differently:\n got %v\nwant %v", o[0], o[1], got, want[o])
			}
		}
		sec := kc.get("Secret", "shop", "creds")
		if d, _, _ := unstructured.NestedString(sec.Object, "data", "password"); d != "czNjcjN0LVpxOS1uZXZlci1wcmludA==" {
			t.Errorf("secret data = %q", d)
		}
	})

	t.Run("namespace mapping", func(t *testing.T) {
		r := e.mustRun("--json", "restore", "kubernetes", first, "--namespace-mapping", "shop=shop-copy")
		s := r.Message(t, "summary")
		if num(s["failed"]) != 0 || num(s["created"]) < int64(len(objs)) {
			t.Errorf("summary = %v\n%s", s, r)
		}
		for _, o := range objs {
			got := comparable(kc.get(o[0], "shop-copy", o[1]))
			if !reflect.DeepEqual(got, want[o]) {
				t.Errorf("%s %s in shop-copy differs:\n got %v\nwant %v", o[0], o[1], got, want[o])
			}
		}
		if got := comparable(kc.get("Namespace", "", "shop-copy")); !reflect.DeepEqual(got, wantNS) {
			t.Errorf("namespace shop-copy = %v, want %v", got, wantNS)
		}
		rb := kc.get("RoleBinding", "shop-copy", "app-reader")
		subj, _, _ := unstructured.NestedSlice(rb.Object, "subjects")
		if len(subj) != 1 || subj[0].(map[string]any)["namespace"] != "shop-copy" {
			t.Errorf("role binding subjects not mapped: %v", subj)
		}
	})

	t.Run("existing skip and update", func(t *testing.T) {
		kc.delete("ConfigMap", "shop", "settings")
		kc.delete("Widget", "shop", "small")
		cm := kc.get("Secret", "shop", "creds")
		must(t, unstructured.SetNestedField(cm.Object, "Y2hhbmdlZA==", "data", "password"))
		_, err := kc.res("Secret", "shop").Update(context.Background(), cm, metav1.UpdateOptions{})
		must(t, err)

		r := e.mustRun("--json", "-v", "restore", "kubernetes", first, "--existing", "skip", "--include-namespaces", "shop")
		actions := kubeActions(t, r)
		for name, want := range map[string]string{
			"configmaps shop/settings":                      kube.ActionCreated,
			"widgets shop/small":                            kube.ActionCreated,
			"secrets shop/creds":                            kube.ActionSkipped,
			"deployments shop/web":                          kube.ActionUnchanged,
			"serviceaccounts shop/app":                      kube.ActionUnchanged,
			"widgets shop/huge":                             kube.ActionUnchanged,
			"namespaces shop":                               kube.ActionUnchanged,
			"customresourcedefinitions widgets.example.com": kube.ActionUnchanged,
		} {
			if actions[name] != want {
				t.Errorf("%s: %q, want %q (all: %v)", name, actions[name], want, actions)
			}
		}
		if d, _, _ := unstructured.NestedString(kc.get("Secret", "shop", "creds").Object, "data", "password"); d != "Y2hhbmdlZA==" {
			t.Errorf("--existing skip changed the secret")
		}

		r = e.mustRun("--json", "restore", "kubernetes", first, "--existing", "update", "--include-namespaces", "shop")
		if a := kubeActions(t, r)["secrets shop/creds"]; a != kube.ActionUpdated {
			t.Errorf("secret: %q, want updated", a)
		}
		if d, _, _ := unstructured.NestedString(kc.get("Secret", "shop", "creds").Object, "data", "password"); d != "czNjcjN0LVpxOS1uZXZlci1wcmludA==" {
			t.Errorf("--existing update did not restore the secret: %q", d)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		kc.delete("ConfigMap", "shop", "settings")
		r := e.mustRun("restore", "kubernetes", first, "--dry-run", "--include-namespaces", "shop")
		if !strings.Contains(r.Stdout, "would create configmaps shop/settings") ||
			!strings.Contains(r.Stdout, "unchanged    deployments.apps shop/web") {
			t.Errorf("dry run output:\n%s", r)
		}
		if kc.exists("ConfigMap", "shop", "settings") {
			t.Errorf("the dry run created the config map")
		}
	})

	t.Run("modifiers", func(t *testing.T) {
		mods := filepath.Join(t.TempDir(), "mods.yaml")
		writeFile(t, mods, []byte(`version: v1
resourceModifierRules:
- conditions: {groupResource: deployments.apps, namespaces: [shop-mod], resourceNameRegex: "^web$"}
  patches:
  - {operation: replace, path: /spec/replicas, value: 1}
  - {operation: replace, path: /spec/template/spec/containers/0/image, value: "registry.example/web:dr"}
- conditions: {groupResource: "*", labelSelector: {matchLabels: {app: web}}}
  mergePatches:
  - patchData: |
      metadata: {labels: {restored: "yes"}}
`))
		e.mustRun("restore", "kubernetes", first, "--namespace-mapping", "shop=shop-mod", "--modifiers", mods)
		dep := kc.get("Deployment", "shop-mod", "web")
		if n, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); n != 1 {
			t.Errorf("replicas = %d, want 1", n)
		}
		if dep.GetLabels()["restored"] != "yes" || kc.get("ConfigMap", "shop-mod", "settings").GetLabels()["restored"] != "yes" {
			t.Errorf("merge patch not applied")
		}
		if kc.get("Secret", "shop-mod", "creds").GetLabels()["restored"] != "" {
			t.Errorf("merge patch applied to an object the selector does not match")
		}
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		writeFile(t, bad, []byte("version: v1\nresourceModifierRules:\n- conditions: {groupResource: x}\n  patches: [{operation: frob, path: /a}]\n"))
		r := e.expect(1, "restore", "kubernetes", first, "--modifiers", bad)
		if !strings.Contains(r.Stderr, "frob") {
			t.Errorf("bad modifier error:\n%s", r)
		}
	})

	t.Run("refused object is reported, the rest restored", func(t *testing.T) {
		// The CRD's schema tightens after the backup: the huge widget
		// is now invalid.
		crd := kc.get("CustomResourceDefinition", "", "widgets.example.com")
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		must(t, unstructured.SetNestedField(versions[0].(map[string]any), int64(10), "schema", "openAPIV3Schema", "properties", "spec", "properties", "size", "maximum"))
		must(t, unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"))
		_, err := kc.res("CustomResourceDefinition", "").Update(context.Background(), crd, metav1.UpdateOptions{})
		must(t, err)
		r := e.expect(3, "restore", "kubernetes", first, "--namespace-mapping", "shop=shop-strict")
		if !strings.Contains(r.Stderr, "widgets.example.com shop-strict/huge") || !strings.Contains(r.Stderr, "1 objects or volumes could not be restored") {
			t.Errorf("the refused object is not reported:\n%s", r)
		}
		for _, o := range objs {
			if o == [2]string{"Widget", "huge"} {
				continue
			}
			if !kc.exists(o[0], "shop-strict", o[1]) {
				t.Errorf("%s %s not restored next to the refused object", o[0], o[1])
			}
		}
	})

	t.Run("diff between backups", func(t *testing.T) {
		dep := kc.get("Deployment", "shop", "web")
		must(t, unstructured.SetNestedField(dep.Object, int64(5), "spec", "replicas"))
		_, err := kc.res("Deployment", "shop").Update(context.Background(), dep, metav1.UpdateOptions{})
		must(t, err)
		second := str(e.mustRun("--json", "backup", "kubernetes", "--include-namespaces", "shop").Message(t, "summary")["snapshot_id"])
		r := e.mustRun("diff", first, second)
		if !strings.Contains(r.Stdout, "namespaces/shop/apps/deployments/web.json") {
			t.Errorf("diff does not show the changed deployment:\n%s", r)
		}
		if strings.Contains(r.Stdout, "services/web.json") {
			t.Errorf("diff shows an unchanged object:\n%s", r)
		}
	})
}

// forceDelete deletes an object and drops its finalizers.
func (c *kubeClient) forceDelete(kind, ns, name string) {
	c.t.Helper()
	c.delete(kind, ns, name)
	_, err := c.res(kind, ns).Patch(context.Background(), name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		c.t.Fatalf("drop finalizers of %s %s: %v", kind, name, err)
	}
	waitGone(c.t, c, kind, ns, name)
}

func waitGone(t *testing.T, kc *kubeClient, kind, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for kc.exists(kind, ns, name) {
		if time.Now().After(deadline) {
			t.Fatalf("%s %s still exists", kind, name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kubeActions maps "resource ns/name" to the action of each object line
// of a --json restore.
func kubeActions(t *testing.T, r result) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(r.Stdout, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["message_type"] != "object" {
			continue
		}
		key := fmt.Sprint(m["resource"], " ")
		if ns, _ := m["namespace"].(string); ns != "" {
			key += ns + "/"
		}
		out[key+fmt.Sprint(m["name"])] = fmt.Sprint(m["action"])
	}
	return out
}

// TestKubernetesRestoreIntoAnotherCluster backs up a whole cluster and
// restores it into a second, empty one: every object comes back, and the
// objects the new cluster made for itself are left alone, not failed.
func TestKubernetesRestoreIntoAnotherCluster(t *testing.T) {
	src, dst := testsrv.Kube(t), testsrv.Kube(t)
	srcDyn, err := dynamic.NewForConfig(src.Config())
	must(t, err)
	dstDyn, err := dynamic.NewForConfig(dst.Config())
	must(t, err)
	fixtures := decodeYAMLDocs(t, kubeFixtures)
	(&kubeClient{t: t, dyn: srcDyn}).apply(fixtures)
	from, to := &kubeClient{t: t, dyn: srcDyn}, &kubeClient{t: t, dyn: dstDyn}

	e := initRepo(t)
	e.env["KUBECONFIG"] = src.Kubeconfig
	e.mustRun("backup", "kubernetes")
	r := e.mustRun("--json", "restore", "kubernetes", "latest", "--kubeconfig", dst.Kubeconfig)
	s := r.Message(t, "summary")
	if num(s["failed"]) != 0 || num(s["created"]) == 0 {
		t.Fatalf("summary = %v\n%s", s, r)
	}
	for _, o := range namespacedFixtures(fixtures) {
		want, got := comparable(from.get(o[0], "shop", o[1])), comparable(to.get(o[0], "shop", o[1]))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s differs in the new cluster:\n got %v\nwant %v", o[0], o[1], got, want)
		}
	}
	// Restoring again changes nothing.
	r = e.mustRun("--json", "restore", "kubernetes", "latest", "--kubeconfig", dst.Kubeconfig)
	s = r.Message(t, "summary")
	if num(s["created"]) != 0 || num(s["failed"]) != 0 || num(s["updated"]) != 0 {
		t.Errorf("second restore: %v\n%s", s, r.Stdout)
	}
}

// TestKubernetesDatabaseThroughService: a PostgreSQL reached through a
// Service of the cluster is backed up with the cluster's objects, its
// password read from a Secret, and restored from that snapshot. The API
// server refuses loopback endpoints, so the tested service is an
// ExternalName one naming localhost; how an EndpointSlice resolves is
// checked without connecting.
func TestKubernetesDatabaseThroughService(t *testing.T) {
	pg := testsrv.Postgres(t, testsrv.PGOptions{})
	pg.PSQL(t, "postgres", "CREATE DATABASE app")
	pg.PSQL(t, "app", "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders SELECT g, 'item ' || g FROM generate_series(1, 500) g")
	k := testsrv.Kube(t)
	dyn, err := dynamic.NewForConfig(k.Config())
	must(t, err)
	kc := &kubeClient{t: t, dyn: dyn}
	kubeGVR["EndpointSlice"] = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	kc.apply(decodeYAMLDocs(t, fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: data}
---
apiVersion: v1
kind: Secret
metadata: {name: pg-creds, namespace: data}
stringData: {password: %q}
---
apiVersion: v1
kind: Service
metadata: {name: pg, namespace: data}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{name: pg, port: %d}]
---
apiVersion: v1
kind: Service
metadata: {name: pg-pods, namespace: data}
spec:
  ports: [{name: pg, port: 5432, targetPort: 15432}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: pg-pods-1, namespace: data, labels: {kubernetes.io/service-name: pg-pods}}
addressType: IPv4
ports: [{name: pg, port: 15432}]
endpoints:
- {addresses: [10.1.2.2], conditions: {ready: false}}
- {addresses: [10.1.2.3], conditions: {ready: true}}
`, pg.Password, pg.Port)))
	clients, err := kube.NewClients(k.Config())
	must(t, err)
	if addr, err := kube.ResolveService(context.Background(), clients, "data", "pg-pods", "pg"); err != nil || addr != "10.1.2.3:15432" {
		t.Errorf("pg-pods resolves to %q, %v; want the ready endpoint 10.1.2.3:15432", addr, err)
	}

	e := initRepo(t)
	e.env["KUBECONFIG"] = k.Kubeconfig
	r := e.mustRun("backup", "kubernetes", "--include-namespaces", "data",
		"--database", "postgres:data/pg:pg,user=postgres,secret=pg-creds,db=app")
	if strings.Contains(r.Stdout+r.Stderr, pg.Password) {
		t.Fatalf("the database password was printed:\n%s", r)
	}
	ls := e.mustRun("ls", "latest").Stdout
	if !strings.Contains(ls, "/databases/data/pg/") || !strings.Contains(ls, "/namespaces/data/core/services/pg.json") {
		t.Fatalf("snapshot lacks the database or the service:\n%s", ls)
	}
	pg.PSQL(t, "postgres", "DROP DATABASE app")
	e.env["BUNKER_POSTGRES_DSN"] = pg.DSN("postgres")
	e.mustRun("restore", "postgres", "latest", "--from-kubernetes", "data/pg", "--no-globals")
	if got := strings.TrimSpace(pg.PSQL(t, "app", "SELECT count(*) FROM orders")); got != "500" {
		t.Fatalf("restored %s rows, want 500", got)
	}

	// A service without endpoints fails the backup, and no snapshot is
	// saved.
	before := len(e.snapshots())
	r = e.expect(1, "backup", "kubernetes", "--database", "postgres:data/missing")
	if !strings.Contains(r.Stderr, "data/missing") || len(e.snapshots()) != before {
		t.Errorf("missing service:\n%s", r)
	}
}

// TestKubernetesVolumes backs up the files of a hostPath volume with the
// objects, then restores claim, volume and files into a wiped directory,
// the files written before the workload that uses them is created.
func TestKubernetesVolumes(t *testing.T) {
	k := testsrv.Kube(t)
	dyn, err := dynamic.NewForConfig(k.Config())
	must(t, err)
	kc := &kubeClient{t: t, dyn: dyn}
	kubeGVR["PersistentVolume"] = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}
	kubeGVR["PersistentVolumeClaim"] = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	dir := filepath.Join(t.TempDir(), "vol")
	files := map[string][]byte{
		"db/data.bin":        randBytes(21, 3<<20+17),
		"db/config file.txt": []byte("max_connections = 100\n"),
		"empty":              nil,
	}
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data)
	}
	must(t, os.Symlink("db/data.bin", filepath.Join(dir, "current")))
	kc.apply(decodeYAMLDocs(t, fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: vol}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-data}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {path: %q}
  claimRef: {namespace: vol, name: data}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: vol}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  volumeName: pv-data
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: vol}
spec:
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: registry.example/db:1, volumeMounts: [{name: data, mountPath: /data}]}]
      volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
`, dir)))
	// Bind the claim, as the volume controller would.
	pvc := kc.get("PersistentVolumeClaim", "vol", "data")
	must(t, unstructured.SetNestedField(pvc.Object, "Bound", "status", "phase"))
	_, err = kc.res("PersistentVolumeClaim", "vol").UpdateStatus(context.Background(), pvc, metav1.UpdateOptions{})
	must(t, err)

	e := initRepo(t)
	e.env["KUBECONFIG"] = k.Kubeconfig
	sum := e.mustRun("--json", "backup", "kubernetes", "--include-namespaces", "vol", "--volumes").Message(t, "summary")
	id := str(sum["snapshot_id"])
	ls := e.mustRun("ls", id).Stdout
	for _, p := range []string{"/volumes/vol/data/db/data.bin", "/volumes/vol/data/current", "/cluster/core/persistentvolumes/pv-data.json"} {
		if !strings.Contains(ls, p+"\n") {
			t.Errorf("snapshot lacks %s:\n%s", p, ls)
		}
	}
	man := e.mustRun("dump", id, "/kubernetes.json").Stdout
	if !strings.Contains(man, `"vol/data"`) {
		t.Errorf("manifest does not list the volume:\n%s", man)
	}

	// Lose everything: objects and files.
	kc.delete("Deployment", "vol", "db")
	// Protection finalizers wait for a controller there is none of.
	kc.forceDelete("PersistentVolumeClaim", "vol", "data")
	kc.forceDelete("PersistentVolume", "", "pv-data")
	must(t, os.RemoveAll(dir))

	r := e.mustRun("restore", "kubernetes", id, "--volumes", "-v")
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s not restored (%v)", name, err)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "current")); err != nil || target != "db/data.bin" {
		t.Errorf("link = %q, %v", target, err)
	}
	// Volume data before workloads.
	vi := strings.Index(r.Stdout, "volume vol/data restored")
	di := strings.Index(r.Stdout, "deployments.apps vol/db")
	if vi < 0 || di < 0 || vi > di {
		t.Errorf("volume data was not written before the deployment was created:\n%s", r.Stdout)
	}
	if !kc.exists("Deployment", "vol", "db") || !kc.exists("PersistentVolumeClaim", "vol", "data") {
		t.Errorf("objects not restored")
	}

	// A claim whose volume is not on this node fails its data, not the
	// objects: exit 3.
	must(t, os.RemoveAll(dir))
	r = e.expect(3, "restore", "kubernetes", id, "--volumes", "--namespace-mapping", "vol=vol2")
	if !strings.Contains(r.Stderr, "vol2/data not restored") {
		t.Errorf("missing volume not reported:\n%s", r)
	}
	e.mustRun("restore", "kubernetes", id, "--volumes-only")
	if _, err := os.Stat(filepath.Join(dir, "db", "data.bin")); err != nil {
		t.Errorf("--volumes-only: %v", err)
	}
}

// TestKubernetesAgent: the node agent backs up the volume files of a
// completed Backup with volumes: true for the volumes on its node, records
// the snapshot on the Backup, and does not do it twice. A Backup the
// tenancy rule refuses (no admin namespace here) is skipped with a
// warning naming what was refused, though completed: no snapshot, no
// annotation.
func TestKubernetesAgent(t *testing.T) {
	k := testsrv.Kube(t)
	must(t, operator.InstallCRDs(context.Background(), k.Config(), time.Minute))
	dyn, err := dynamic.NewForConfig(k.Config())
	must(t, err)
	kc := &kubeClient{t: t, dyn: dyn}
	for kind, gvr := range map[string]schema.GroupVersionResource{
		"PersistentVolume":      {Version: "v1", Resource: "persistentvolumes"},
		"PersistentVolumeClaim": {Version: "v1", Resource: "persistentvolumeclaims"},
		"BackupRepository":      {Group: "bunker.dev", Version: "v1alpha1", Resource: "backuprepositories"},
		"Backup":                {Group: "bunker.dev", Version: "v1alpha1", Resource: "backups"},
	} {
		kubeGVR[kind] = gvr
	}
	e := initRepo(t)
	e.env["KUBECONFIG"] = k.Kubeconfig
	dir := filepath.Join(t.TempDir(), "vol")
	writeFile(t, filepath.Join(dir, "data.txt"), []byte("on node n1\n"))
	kc.apply(decodeYAMLDocs(t, fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: v1
kind: Secret
metadata: {name: repo, namespace: app}
stringData: {password: %q}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-n1}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: local
  local: {path: %q}
  claimRef: {namespace: app, name: data}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [n1]}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: app}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: local
  volumeName: pv-n1
  resources: {requests: {storage: 1Gi}}
---
apiVersion: bunker.dev/v1alpha1
kind: BackupRepository
metadata: {name: main, namespace: app}
spec:
  url: %q
  passwordSecretRef: {name: repo, key: password}
---
apiVersion: bunker.dev/v1alpha1
kind: Backup
metadata: {name: nightly, namespace: app}
spec: {repository: main, includeNamespaces: [app], volumes: true}
---
apiVersion: bunker.dev/v1alpha1
kind: Backup
metadata: {name: wide, namespace: app}
spec: {repository: main, includeNamespaces: [app, other], volumes: true}
`, testPassword, dir, e.repo)))
	for _, o := range [][2]string{{"PersistentVolumeClaim", "data"}, {"Backup", "nightly"}, {"Backup", "wide"}} {
		kind, name := o[0], o[1]
		o := kc.get(kind, "app", name)
		phase := "Bound"
		if kind == "Backup" {
			phase = "Completed" // as the operator leaves it (an operator with other admin namespaces, for wide)
		}
		must(t, unstructured.SetNestedField(o.Object, phase, "status", "phase"))
		_, err := kc.res(kind, "app").UpdateStatus(context.Background(), o, metav1.UpdateOptions{})
		must(t, err)
	}

	// Node n2 has none of the volumes: it records "none" and saves
	// nothing.
	e.mustRun("--json", "agent", "--once", "--node", "n2", "--tenant-schemes", "local")
	if got := kc.get("Backup", "app", "nightly").GetAnnotations()["volumes.bunker.dev/n2"]; got != "none" {
		t.Errorf("n2 annotation = %q, want none", got)
	}
	if n := len(e.snapshots()); n != 0 {
		t.Errorf("node n2 saved %d snapshots", n)
	}
	r := e.mustRun("agent", "--once", "--node", "n1", "--tenant-schemes", "local")
	id := kc.get("Backup", "app", "nightly").GetAnnotations()["volumes.bunker.dev/n1"]
	if len(id) != 64 {
		t.Fatalf("n1 annotation = %q, want a snapshot ID", id)
	}
	if !strings.Contains(r.Stderr, "Backup app/wide: skipped") || !strings.Contains(r.Stderr, `namespace "other" refused`) {
		t.Errorf("the refused Backup is not reported:\n%s", r)
	}
	if a := kc.get("Backup", "app", "wide").GetAnnotations(); len(a) != 0 {
		t.Errorf("the refused Backup was annotated: %v", a)
	}
	if n := len(e.snapshots()); n != 1 {
		t.Errorf("%d snapshots after node n1, want 1 (none for the refused Backup)", n)
	}
	if got := e.mustRun("dump", id, "/volumes/app/data/data.txt").Stdout; got != "on node n1\n" {
		t.Errorf("volume file = %q", got)
	}
	n := len(e.snapshots())
	e.mustRun("agent", "--once", "--node", "n1", "--tenant-schemes", "local")
	if len(e.snapshots()) != n {
		t.Errorf("the agent backed up the same Backup twice")
	}

	// The operator with --json logs JSON lines as docs/JSON.md lists them.
	r = runService(t, e.getenv, []string{"operator", "--metrics-addr", "0", "--health-addr", "0", "--tenant-schemes", "local"},
		func(_, stderr string) bool { return strings.Contains(stderr, `"message_type":"log"`) })
	if r.Code != 0 && r.Code != cli.ExitInterrupted {
		t.Errorf("operator --json:\n%s", r)
	}
}

// TestRunKubernetesJob: a plan's kubernetes job backs up the namespaces
// it names in-process, through the same use case as 'bunker backup
// kubernetes', and its run reports the snapshot and what it read; a
// Secret's value reaches neither the output nor the job's log.
func TestRunKubernetesJob(t *testing.T) {
	k := testsrv.Kube(t)
	dyn, err := dynamic.NewForConfig(k.Config())
	must(t, err)
	(&kubeClient{t: t, dyn: dyn}).apply(decodeYAMLDocs(t, kubeFixtures))
	pe := newPlanEnv(t, `  - name: cluster
    source: {type: kubernetes, include_namespaces: [shop]}
    schedule: every 24h
    repository: main
`)
	pe.env["KUBECONFIG"] = k.Kubeconfig
	res := pe.run("--json", "-v", "run", "--plan", pe.plan, "cluster")
	if res.Code != 0 {
		t.Fatalf("run: exit %d\n%s", res.Code, res)
	}
	sum := res.Message(t, "summary")
	id := str(sum["snapshot_id"])
	if id == "" || num(sum["bytes_read"]) == 0 {
		t.Fatalf("run summary: %v", sum)
	}
	if n := pe.snapshotsTagged(pe.main, "job=cluster"); n != 1 {
		t.Fatalf("main holds %d snapshots of the job, want 1", n)
	}
	if strings.Contains(res.Stdout+res.Stderr, "s3cr3t") {
		t.Errorf("the run printed the secret:\n%s", res)
	}
	ls := pe.main.mustRun("ls", id).Stdout
	if !strings.Contains(ls, "/namespaces/shop/core/configmaps/settings.json\n") || strings.Contains(ls, "/namespaces/default") {
		t.Errorf("the job's snapshot holds the wrong objects:\n%s", ls)
	}
}
