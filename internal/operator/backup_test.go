package operator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

func newBackup(ns, name string, spec v1alpha1.BackupSpec) *v1alpha1.Backup {
	if spec.Repository == "" {
		spec.Repository = "repo"
	}
	return &v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec}
}

func TestBackup(t *testing.T) {
	e := newEnv(t)
	const password = "hunter2-very-secret"
	runner := newFakeRunner()
	release := make(chan struct{})
	started := make(chan string, 10)
	runner.backupFn = func(ctx context.Context, req BackupRequest) (BackupResult, error) {
		switch {
		case slices.Contains(req.Spec.Tags, "fail"):
			return BackupResult{}, fmt.Errorf("%w: cannot open s3 with password %s", errBoom, req.Repo.Password)
		case slices.Contains(req.Spec.Tags, "block"):
			started <- req.Tags[len(req.Tags)-1]
			select {
			case <-release:
			case <-ctx.Done():
				return BackupResult{}, ctx.Err()
			}
		}
		return BackupResult{}, nil
	}
	op := e.start(Options{Runner: runner, Concurrency: 1})
	m := op.op.metrics

	t.Run("completes", func(t *testing.T) {
		ns := "backup-ok"
		e.namespace(ns)
		e.repository(ns, password)
		spec := v1alpha1.BackupSpec{
			Selection: v1alpha1.Selection{
				IncludeNamespaces: []string{"app-*"}, ExcludeNamespaces: []string{"app-test"},
				IncludeResources: []string{"deployments.apps"}, LabelSelector: "tier=web",
			},
			IncludeClusterResources: ptr.To(false), Volumes: true, Tags: []string{"nightly"},
		}
		b := newBackup(ns, "first", spec)
		e.create(b)
		done := e.backupPhase(ns, "first", v1alpha1.BackupCompleted)

		calls := runner.backupCalls()
		if len(calls) != 1 {
			t.Fatalf("Runner.Backup called %d times, want 1", len(calls))
		}
		got := calls[0]
		spec.Repository = "repo"
		if !equalJSON(got.Spec, spec) {
			t.Errorf("Runner.Backup spec = %+v, want %+v", got.Spec, spec)
		}
		wantTag := fmt.Sprintf("bunker.dev/backup=%s/first/%s", ns, done.UID)
		if !slices.Equal(got.Tags, []string{"nightly", wantTag}) {
			t.Errorf("tags = %q, want [nightly %s]", got.Tags, wantTag)
		}
		if got.Repo.URL != "s3:https://s3.example.net/bucket/"+ns || got.Repo.Password != password {
			t.Errorf("repo = %s (password ok: %v)", got.Repo.URL, got.Repo.Password == password)
		}
		st := done.Status
		if st.SnapshotID == "" || st.Objects == 0 || st.BytesAdded == 0 || st.Attempts != 1 ||
			st.StartTime == nil || st.CompletionTime == nil {
			t.Errorf("status = %+v", st)
		}
		if c := condition(st.Conditions, v1alpha1.ConditionCompleted); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("Completed condition = %+v", c)
		}
		// Metrics follow the status write.
		eventually(t, "backups_total{completed} = 1", func() bool {
			return value(m.backups.WithLabelValues(ns, resultCompleted)) == 1
		})
		if v := value(m.lastSuccess.WithLabelValues(ns, "")); v != float64(st.CompletionTime.Unix()) {
			t.Errorf("last_success = %v, want %d", v, st.CompletionTime.Unix())
		}
		if n := value(m.duration); n != 1 {
			t.Errorf("duration histogram: %v observations", n)
		}
		e.waitEvent(ns, "Started: backing up into BackupRepository repo")
		e.waitEvent(ns, "Completed: snapshot "+st.SnapshotID[:8])
	})

	t.Run("fails once", func(t *testing.T) {
		ns := "backup-fail"
		e.namespace(ns)
		e.repository(ns, password)
		e.create(newBackup(ns, "bad", v1alpha1.BackupSpec{Tags: []string{"fail"}}))
		b := e.backupPhase(ns, "bad", v1alpha1.BackupFailed)
		if !strings.Contains(b.Status.Message, "boom: cannot open s3") || strings.Contains(b.Status.Message, password) {
			t.Errorf("message = %q", b.Status.Message)
		}
		if c := condition(b.Status.Conditions, v1alpha1.ConditionFailed); c == nil || c.Status != metav1.ConditionTrue {
			t.Errorf("Failed condition = %+v", c)
		}
		eventually(t, "backups_total{failed} = 1", func() bool {
			return value(m.backups.WithLabelValues(ns, resultFailed)) == 1
		})
		e.waitEvent(ns, "Failed: boom")
		// A failed Backup is final: touching it, or the operator seeing it
		// again, runs nothing.
		e.poke(b)
		e.create(newBackup(ns, "after", v1alpha1.BackupSpec{}))
		e.backupPhase(ns, "after", v1alpha1.BackupCompleted)
		n := 0
		for _, c := range runner.backupCalls() {
			if slices.Contains(c.Spec.Tags, "fail") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the failing backup ran %d times, want 1", n)
		}
		for _, ev := range e.events(ns) {
			if strings.Contains(ev, password) {
				t.Errorf("event shows the password: %s", ev)
			}
		}
	})

	t.Run("waits for its repository", func(t *testing.T) {
		ns := "backup-wait"
		e.namespace(ns)
		e.create(newBackup(ns, "early", v1alpha1.BackupSpec{}))
		b := e.backupPhase(ns, "early", v1alpha1.BackupPending)
		if !strings.Contains(b.Status.Message, "BackupRepository backup-wait/repo not found") {
			t.Errorf("message = %q", b.Status.Message)
		}
		e.repository(ns, password)
		e.backupPhase(ns, "early", v1alpha1.BackupCompleted)
	})

	t.Run("concurrency", func(t *testing.T) {
		ns := "backup-queue"
		e.namespace(ns)
		e.repository(ns, password)
		e.create(newBackup(ns, "one", v1alpha1.BackupSpec{Tags: []string{"block"}}))
		<-started
		if v := value(m.running.WithLabelValues(kindBackup)); v != 1 {
			t.Errorf("running{backup} = %v, want 1", v)
		}
		e.create(newBackup(ns, "two", v1alpha1.BackupSpec{Tags: []string{"block"}}))
		b := e.backupPhase(ns, "two", v1alpha1.BackupPending)
		if b.Status.Message != "waiting for a free worker" {
			t.Errorf("message = %q", b.Status.Message)
		}
		release <- struct{}{} // one completes; two starts
		<-started
		e.backupPhase(ns, "one", v1alpha1.BackupCompleted)
		release <- struct{}{}
		e.backupPhase(ns, "two", v1alpha1.BackupCompleted)
		eventually(t, "running{backup} = 0", func() bool {
			return value(m.running.WithLabelValues(kindBackup)) == 0
		})
	})

	t.Run("invalid selector", func(t *testing.T) {
		ns := "backup-selector"
		e.namespace(ns)
		e.repository(ns, password)
		e.create(newBackup(ns, "sel", v1alpha1.BackupSpec{Selection: v1alpha1.Selection{LabelSelector: "a in (b"}}))
		b := e.backupPhase(ns, "sel", v1alpha1.BackupFailed)
		if !strings.Contains(b.Status.Message, "labelSelector") {
			t.Errorf("message = %q", b.Status.Message)
		}
	})

	if strings.Contains(e.log.String(), password) {
		t.Errorf("the log shows the password")
	}
}
