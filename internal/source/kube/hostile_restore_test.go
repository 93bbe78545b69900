package kube

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
