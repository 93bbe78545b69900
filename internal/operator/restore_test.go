package operator

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

func newRestore(ns, name string, spec v1alpha1.RestoreSpec) *v1alpha1.Restore {
	if spec.Repository == "" {
		spec.Repository = "repo"
	}
	return &v1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec}
}

func TestRestore(t *testing.T) {
	e := newEnv(t)
	const ns = "restore"
	e.namespace(ns)
	e.repository(ns, "restore-password")
	runner := newFakeRunner()
	runner.restoreFn = func(_ context.Context, req RestoreRequest) (RestoreResult, error) {
		switch req.Spec.LabelSelector {
		case "partial=yes":
			return RestoreResult{Restored: 5, Skipped: 1, Failed: 2, Partial: true}, nil
		case "fail=yes":
			return RestoreResult{}, errBoom
		}
		return RestoreResult{Restored: 7, Skipped: 2}, nil
	}
	op := e.start(Options{Runner: runner})
	m := op.op.metrics

	t.Run("completes with counts", func(t *testing.T) {
		spec := v1alpha1.RestoreSpec{
			Repository: "repo", Snapshot: "0123abcd",
			Selection:        v1alpha1.Selection{IncludeNamespaces: []string{"shop"}, ExcludeResources: []string{"secrets"}},
			NamespaceMapping: map[string]v1alpha1.NamespaceName{"shop": "shop-copy"},
			Existing:         v1alpha1.ExistingUpdate,
		}
		e.create(newRestore(ns, "ok", spec))
		r := e.restorePhase(ns, "ok", v1alpha1.RestoreCompleted)
		calls := runner.restoreCalls()
		if len(calls) != 1 {
			t.Fatalf("Runner.Restore called %d times", len(calls))
		}
		if c := calls[0]; c.Snapshot != "0123abcd" || !equalJSON(c.Spec, spec) || c.Repo.Password != "restore-password" {
			t.Errorf("request: snapshot %s spec %+v", c.Snapshot, c.Spec)
		}
		st := r.Status
		if st.Restored != 7 || st.Skipped != 2 || st.Failed != 0 || st.SnapshotID != "0123abcd" || st.CompletionTime == nil {
			t.Errorf("status %+v", st)
		}
		if c := condition(st.Conditions, v1alpha1.ConditionCompleted); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("Completed condition %+v", c)
		}
		eventually(t, "restores_total{completed}", func() bool {
			return value(m.restores.WithLabelValues(ns, resultCompleted)) == 1
		})
	})

	t.Run("partial", func(t *testing.T) {
		e.create(newRestore(ns, "partial", v1alpha1.RestoreSpec{Snapshot: "latest",
			Selection: v1alpha1.Selection{LabelSelector: "partial=yes"}}))
		r := e.restorePhase(ns, "partial", v1alpha1.RestorePartiallyFailed)
		if st := r.Status; st.Restored != 5 || st.Skipped != 1 || st.Failed != 2 {
			t.Errorf("status %+v", st)
		}
		if c := condition(r.Status.Conditions, v1alpha1.ConditionFailed); c == nil || c.Reason != "PartiallyFailed" {
			t.Errorf("Failed condition %+v", c)
		}
		e.waitEvent(ns, "PartiallyFailed: 5 objects restored, 1 skipped, 2 failed")
	})

	t.Run("fails", func(t *testing.T) {
		e.create(newRestore(ns, "fails", v1alpha1.RestoreSpec{Snapshot: "latest",
			Selection: v1alpha1.Selection{LabelSelector: "fail=yes"}}))
		r := e.restorePhase(ns, "fails", v1alpha1.RestoreFailed)
		if r.Status.Message != "boom" {
			t.Errorf("message %q", r.Status.Message)
		}
	})

	t.Run("from a backup", func(t *testing.T) {
		// The Restore waits until its Backup completes, then restores the
		// Backup's snapshot.
		e.create(newRestore(ns, "of-backup", v1alpha1.RestoreSpec{BackupName: "src"}))
		r := e.restorePhase(ns, "of-backup", v1alpha1.RestorePending)
		if !strings.Contains(r.Status.Message, "Backup restore/src not found") {
			t.Errorf("message %q", r.Status.Message)
		}
		e.create(newBackup(ns, "src", v1alpha1.BackupSpec{}))
		b := e.backupPhase(ns, "src", v1alpha1.BackupCompleted)
		r = e.restorePhase(ns, "of-backup", v1alpha1.RestoreCompleted)
		if r.Status.SnapshotID != b.Status.SnapshotID {
			t.Errorf("restored %s, want the backup's %s", r.Status.SnapshotID, b.Status.SnapshotID)
		}

		runner.mu.Lock()
		runner.backupFn = func(context.Context, BackupRequest) (BackupResult, error) { return BackupResult{}, errBoom }
		runner.mu.Unlock()
		e.create(newBackup(ns, "bad-src", v1alpha1.BackupSpec{}))
		e.backupPhase(ns, "bad-src", v1alpha1.BackupFailed)
		e.create(newRestore(ns, "of-bad", v1alpha1.RestoreSpec{BackupName: "bad-src"}))
		r = e.restorePhase(ns, "of-bad", v1alpha1.RestoreFailed)
		if !strings.Contains(r.Status.Message, "Backup bad-src failed") {
			t.Errorf("message %q", r.Status.Message)
		}
	})

	t.Run("bad mapping key", func(t *testing.T) {
		e.create(newRestore(ns, "badmap", v1alpha1.RestoreSpec{Snapshot: "latest",
			NamespaceMapping: map[string]v1alpha1.NamespaceName{"a,b=c": "d"}}))
		r := e.restorePhase(ns, "badmap", v1alpha1.RestoreFailed)
		if !strings.Contains(r.Status.Message, "namespaceMapping") {
			t.Errorf("message %q", r.Status.Message)
		}
	})
}
