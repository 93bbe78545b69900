package operator

import (
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

// TestTenancy is issue 15, findings 2 and 3: a Backup or Restore outside
// an admin namespace is confined to its own namespace. Selecting another
// namespace or mapping into one fails it before the Runner runs; a
// Restore runs with its namespace as the filter and cluster-scoped
// objects off. The same specs in the admin namespace run as given.
func TestTenancy(t *testing.T) {
	e := newEnv(t)
	const tenant, admin = "team-a", "bunker-admin"
	for _, ns := range []string{tenant, admin} {
		e.namespace(ns)
		e.repository(ns, ns+"-password")
	}
	runner := newFakeRunner()
	e.start(Options{Runner: runner, AdminNamespaces: []string{admin}})

	wide := v1alpha1.BackupSpec{Selection: v1alpha1.Selection{IncludeNamespaces: []string{"team-b", "kube-system"}}}
	e.create(newBackup(tenant, "wide", wide))
	b := e.backupPhase(tenant, "wide", v1alpha1.BackupFailed)
	if !strings.Contains(b.Status.Message, `"team-b"`) || !strings.Contains(b.Status.Message, "refused") {
		t.Errorf("Backup message %q does not name the namespace refused", b.Status.Message)
	}
	escape := v1alpha1.RestoreSpec{Snapshot: "latest", NamespaceMapping: map[string]v1alpha1.NamespaceName{tenant: "kube-system"}}
	e.create(newRestore(tenant, "escape", escape))
	x := e.restorePhase(tenant, "escape", v1alpha1.RestoreFailed)
	if !strings.Contains(x.Status.Message, `"kube-system"`) || !strings.Contains(x.Status.Message, "refused") {
		t.Errorf("Restore message %q does not name the namespace refused", x.Status.Message)
	}
	if n := len(runner.backupCalls()) + len(runner.restoreCalls()); n != 0 {
		t.Fatalf("the Runner ran %d refused specs", n)
	}

	// A tenant's plain Backup and Restore run, confined.
	e.create(newBackup(tenant, "own", v1alpha1.BackupSpec{Volumes: true}))
	e.backupPhase(tenant, "own", v1alpha1.BackupCompleted)
	e.create(newRestore(tenant, "own", v1alpha1.RestoreSpec{Snapshot: "latest"}))
	e.restorePhase(tenant, "own", v1alpha1.RestoreCompleted)
	bc, rc := runner.backupCalls(), runner.restoreCalls()
	if len(bc) != 1 || len(rc) != 1 {
		t.Fatalf("Runner calls: %d backups, %d restores", len(bc), len(rc))
	}
	if s := bc[0].Spec; !equalJSON(s.IncludeNamespaces, []string{tenant}) || s.IncludeClusterResources == nil || *s.IncludeClusterResources {
		t.Errorf("tenant Backup ran with %+v", s)
	}
	if got := BackupArgs(bc[0].Spec, nil); !strings.Contains(strings.Join(got, " "), "--cluster-resources=off") {
		t.Errorf("tenant Backup args %v", got)
	}
	if c := rc[0]; !equalJSON(c.Spec.IncludeNamespaces, []string{tenant}) || c.ClusterResources == nil || *c.ClusterResources {
		t.Errorf("tenant Restore ran with %+v, cluster resources %v", c.Spec, c.ClusterResources)
	}
	if got := RestoreArgs(rc[0].Spec, "latest", rc[0].ClusterResources); !strings.Contains(strings.Join(got, " "), "--cluster-resources=off") {
		t.Errorf("tenant Restore args %v", got)
	}

	// The admin namespace keeps today's behaviour.
	e.create(newBackup(admin, "wide", wide))
	e.backupPhase(admin, "wide", v1alpha1.BackupCompleted)
	e.create(newRestore(admin, "escape", escape))
	e.restorePhase(admin, "escape", v1alpha1.RestoreCompleted)
	bc, rc = runner.backupCalls(), runner.restoreCalls()
	if len(bc) != 2 || !equalJSON(bc[1].Spec.IncludeNamespaces, wide.IncludeNamespaces) || bc[1].Spec.IncludeClusterResources != nil {
		t.Errorf("admin Backup ran with %+v", bc)
	}
	if len(rc) != 2 || len(rc[1].Spec.IncludeNamespaces) != 0 || !equalJSON(rc[1].Spec.NamespaceMapping, escape.NamespaceMapping) || rc[1].ClusterResources != nil {
		t.Errorf("admin Restore ran with %+v", rc)
	}
}
