package operator

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

// TestVolumeBackups is the node agent's decision (issue 15): which
// Backups of the API server a node backs up volumes for, and with which
// selection. A tenant's Backup with volumes: true that selects another
// namespace or cluster-scoped objects is refused with a reason naming
// what was refused, though it is Completed (an operator with wider admin
// namespaces, or none of the rule, completed it); a tenant's plain Backup
// is confined to its namespace; an admin's is served as given.
func TestVolumeBackups(t *testing.T) {
	e := newEnv(t)
	const tenant, admin, node = "team-a", "bunker-admin", "n1"
	for _, ns := range []string{tenant, "team-b", admin} {
		e.namespace(ns)
	}
	backup := func(ns, name string, phase v1alpha1.BackupPhase, spec v1alpha1.BackupSpec, annotations map[string]string) {
		b := newBackup(ns, name, spec)
		b.Annotations = annotations
		e.create(b)
		if phase != "" {
			b.Status.Phase = phase
			if err := e.c.Status().Update(e.ctx(), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	vol := func(s v1alpha1.BackupSpec) v1alpha1.BackupSpec { s.Volumes = true; return s }
	wide := vol(v1alpha1.BackupSpec{Selection: v1alpha1.Selection{IncludeNamespaces: []string{tenant, "team-b"}}})
	asGiven := func(s v1alpha1.BackupSpec) string { s.Repository = "repo"; return jsonString(t, s) }
	completed := v1alpha1.BackupCompleted
	backup(tenant, "wide", completed, wide, nil)
	backup(tenant, "glob", completed, vol(v1alpha1.BackupSpec{Selection: v1alpha1.Selection{IncludeNamespaces: []string{"*"}}}), nil)
	backup(tenant, "cluster", completed, vol(v1alpha1.BackupSpec{IncludeClusterResources: ptr.To(true)}), nil)
	backup(tenant, "own", completed, vol(v1alpha1.BackupSpec{Selection: v1alpha1.Selection{ExcludeNamespaces: []string{"kube-*"}}}), nil)
	backup(tenant, "running", v1alpha1.BackupRunning, vol(v1alpha1.BackupSpec{}), nil)
	backup(tenant, "failed", v1alpha1.BackupFailed, wide, nil)
	backup(tenant, "novolumes", completed, v1alpha1.BackupSpec{}, nil)
	backup(tenant, "served", completed, vol(v1alpha1.BackupSpec{}), map[string]string{v1alpha1.AnnotationVolumesPrefix + node: "none"})
	backup(admin, "wide", completed, wide, nil)

	type decision struct{ spec, refused string }
	decide := func(namespace, node string, adminNS []string) map[string]decision {
		t.Helper()
		work, err := VolumeBackups(e.ctx(), e.c, namespace, node, adminNS)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]decision{}
		for _, w := range work {
			var d decision
			if w.Refused != nil {
				d.refused = w.Refused.Error()
			} else {
				d.spec = jsonString(t, w.Spec)
			}
			out[w.Backup.Namespace+"/"+w.Backup.Name] = d
		}
		return out
	}
	confined := func(ns string, s v1alpha1.BackupSpec) string {
		s.Repository = "repo"
		s.IncludeNamespaces = []string{ns}
		s.IncludeClusterResources = ptr.To(false)
		return jsonString(t, s)
	}

	got := decide("", node, []string{admin})
	want := map[string]decision{
		tenant + "/wide":    {refused: `includeNamespaces: namespace "team-b" refused`},
		tenant + "/glob":    {refused: `includeNamespaces: namespace "*" refused`},
		tenant + "/cluster": {refused: "includeClusterResources: refused"},
		tenant + "/own":     {spec: confined(tenant, vol(v1alpha1.BackupSpec{Selection: v1alpha1.Selection{ExcludeNamespaces: []string{"kube-*"}}}))},
		admin + "/wide":     {spec: asGiven(wide)},
	}
	check := func(what string, got, want map[string]decision) {
		t.Helper()
		for k, w := range want {
			g, ok := got[k]
			switch {
			case !ok:
				t.Errorf("%s: %s not served or refused", what, k)
			case w.refused != "" && !strings.Contains(g.refused, w.refused):
				t.Errorf("%s: %s: refused %q, spec %s; want refused naming %s", what, k, g.refused, g.spec, w.refused)
			case w.spec != "" && g.spec != w.spec:
				t.Errorf("%s: %s: spec %s, refused %q\nwant spec %s", what, k, g.spec, g.refused, w.spec)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: %s is served or refused, want neither (not Completed, no volumes, or served)", what, k)
			}
		}
	}
	check("node n1", got, want)

	// Another node has not served "served"; one namespace only.
	got = decide(tenant, "n2", []string{admin})
	delete(want, admin+"/wide")
	want[tenant+"/served"] = decision{spec: confined(tenant, vol(v1alpha1.BackupSpec{}))}
	check("node n2 in "+tenant, got, want)

	// No admin namespace: the admin's Backup is a tenant's like any other.
	got = decide(admin, node, nil)
	if d := got[admin+"/wide"]; !strings.Contains(d.refused, `"team-a" refused`) || len(got) != 1 {
		t.Errorf("no admin namespaces: %+v", got)
	}
	// "*": every namespace is an admin's.
	got = decide(tenant, node, []string{"*"})
	if d := got[tenant+"/wide"]; d.spec != asGiven(wide) {
		t.Errorf("admin namespaces *: %+v", d)
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
