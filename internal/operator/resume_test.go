package operator

import (
	"context"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

// TestResume stops the operator while backups and a restore run and
// starts a new one: a backup whose snapshot was saved is completed
// without running again, the others run again.
func TestResume(t *testing.T) {
	e := newEnv(t)
	const ns = "resume"
	e.namespace(ns)
	e.repository(ns, "resume-password")

	first := newFakeRunner()
	started := make(chan string, 10)
	first.backupFn = func(ctx context.Context, req BackupRequest) (BackupResult, error) {
		started <- req.Tags[len(req.Tags)-1]
		<-ctx.Done() // the operator dies mid-backup
		return BackupResult{}, ctx.Err()
	}
	first.restoreFn = func(ctx context.Context, req RestoreRequest) (RestoreResult, error) {
		started <- "restore"
		<-ctx.Done()
		return RestoreResult{}, ctx.Err()
	}
	op1 := e.start(Options{Runner: first, Concurrency: 3})
	e.create(newBackup(ns, "saved", v1alpha1.BackupSpec{}))
	e.create(newBackup(ns, "lost", v1alpha1.BackupSpec{}))
	e.create(&v1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: ns},
		Spec: v1alpha1.RestoreSpec{Repository: "repo", Snapshot: "latest"}})
	for range 3 {
		<-started
	}
	op1.stop()
	saved := e.backupPhase(ns, "saved", v1alpha1.BackupRunning)
	lost := e.backupPhase(ns, "lost", v1alpha1.BackupRunning)
	rs := e.restorePhase(ns, "rs", v1alpha1.RestoreRunning)
	if saved.Status.Attempts != 1 || lost.Status.Attempts != 1 || rs.Status.Attempts != 1 {
		t.Fatalf("attempts before the restart: %d %d %d, want 1", saved.Status.Attempts, lost.Status.Attempts, rs.Status.Attempts)
	}

	// "saved" committed its snapshot just before the operator died;
	// "lost" did not.
	second := newFakeRunner()
	savedTag := backupTag(saved)
	second.snapshots[savedTag] = BackupResult{SnapshotID: fmt.Sprintf("%064x", 0xabc), Objects: 3}
	e.start(Options{Runner: second, Concurrency: 3})

	b := e.backupPhase(ns, "saved", v1alpha1.BackupCompleted)
	if b.Status.SnapshotID != second.snapshots[savedTag].SnapshotID || b.Status.Attempts != 1 || b.Status.Objects != 3 {
		t.Errorf("saved: status %+v", b.Status)
	}
	b = e.backupPhase(ns, "lost", v1alpha1.BackupCompleted)
	if b.Status.Attempts != 2 || b.Status.SnapshotID == "" {
		t.Errorf("lost: status %+v", b.Status)
	}
	calls := second.backupCalls()
	if len(calls) != 1 || calls[0].Tags[len(calls[0].Tags)-1] != backupTag(lost) {
		t.Errorf("after the restart Runner.Backup ran for %d backups, want only %q", len(calls), lost.Name)
	}
	r := e.restorePhase(ns, "rs", v1alpha1.RestoreCompleted)
	if r.Status.Attempts != 2 || len(second.restoreCalls()) != 1 {
		t.Errorf("restore: attempts %d, %d calls", r.Status.Attempts, len(second.restoreCalls()))
	}
	e.waitEvent(ns, "Resumed: running again after an operator restart (attempt 2)")
}
