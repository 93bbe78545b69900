package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/notify"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/state"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// repoTaskRunner is a stubRunner that also checks and prunes
// repositories; prunes fail with pruneErr.
type repoTaskRunner struct {
	stubRunner
	pruneErr error
}

func (s *repoTaskRunner) RunCheck(ctx context.Context, p *plan.Plan, repo string, log io.Writer) error {
	fmt.Fprintf(log, "checked %s (%s)\n", repo, p.Repository(repo).Check.ReadDataSubset)
	s.mu.Lock()
	s.runs["check:"+repo]++
	s.mu.Unlock()
	return nil
}

func (s *repoTaskRunner) RunPrune(ctx context.Context, p *plan.Plan, repo string, log io.Writer) error {
	s.mu.Lock()
	s.runs["prune:"+repo]++
	s.mu.Unlock()
	return s.pruneErr
}

// eventNotifier keeps the events it is sent.
type eventNotifier struct {
	mu     sync.Mutex
	events []notify.Event
}

func (n *eventNotifier) Notify(ctx context.Context, ev notify.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events = append(n.events, ev)
	return nil
}

func (n *eventNotifier) Ping(ctx context.Context, job, stage, body string) error { return nil }

const repoTasksPlan = `repositories:
  - name: r
    location: /r
    password: env:P
    check: {schedule: every 1h, read_data_subset: 10%}
    prune: {schedule: every 2h, max_unused: 10%}
  - {name: plain, location: /p, password: env:P}
jobs:
  - {name: a, source: {type: files, paths: [/a]}, schedule: every 1d, repository: r}
`

// TestRepositoryCheckAndPruneSchedules: the daemon runs a repository's
// check and prune on their own schedules, records each in the run
// history (kind check or prune, named by the repository), counts them
// in the metrics, alerts when one fails, shows them in the API status
// and starts them from the API.
func TestRepositoryCheckAndPruneSchedules(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	p, store := testPlanStore(t, repoTasksPlan, clock, t.TempDir())
	defer store.Close()
	runner := &repoTaskRunner{stubRunner: stubRunner{runs: map[string]int{}}, pruneErr: errors.New("prune: disk full")}
	notifier := &eventNotifier{}
	metrics := NewMetrics("test")
	d, err := New(Options{Plan: p, Runner: runner, Store: store, Clock: clock, Notifier: notifier, Metrics: metrics,
		MeasureEvery: 24 * time.Hour, ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()

	// 13:00: the hourly check; the two-hourly prune waits for 14:00.
	clock.WaitSleepers(wctx, 1)
	clock.Advance(time.Hour)
	waitCount(t, &runner.stubRunner, "check:r", 1)
	idle(t, d)
	if n := runner.count("prune:r"); n != 0 {
		t.Fatalf("prune ran %d times before its slot", n)
	}
	// 14:00: both; the prune fails.
	clock.WaitSleepers(wctx, 1)
	clock.Advance(time.Hour)
	waitCount(t, &runner.stubRunner, "check:r", 2)
	waitCount(t, &runner.stubRunner, "prune:r", 1)
	idle(t, d)

	check, err := store.LastSuccess("r", state.KindCheck)
	if err != nil || check == nil {
		t.Fatalf("no successful check in the history: %v", err)
	}
	if check.Repository != "r" || check.Trigger != state.TriggerSchedule || check.Log != "checked r (10%)\n" ||
		!check.Scheduled.Equal(time.Date(2026, 11, 26, 14, 0, 0, 0, time.UTC)) {
		t.Errorf("check run: %+v", check)
	}
	prune, err := store.LastRun("r", state.KindPrune)
	if err != nil || prune == nil || prune.Result != state.ResultFailed || prune.Error != "prune: disk full" {
		t.Fatalf("prune run: %+v, %v", prune, err)
	}
	if n := testutil.ToFloat64(metrics.repoRuns.WithLabelValues("r", "check", "success")); n != 2 {
		t.Errorf("bunker_repository_runs_total{check,success} = %v, want 2", n)
	}
	if n := testutil.ToFloat64(metrics.repoRuns.WithLabelValues("r", "prune", "failed")); n != 1 {
		t.Errorf("bunker_repository_runs_total{prune,failed} = %v, want 1", n)
	}
	if ts := testutil.ToFloat64(metrics.repoSuccess.WithLabelValues("r", "check")); ts != float64(check.Finished.Unix()) {
		t.Errorf("bunker_repository_last_success_timestamp_seconds{check} = %v", ts)
	}
	notifier.mu.Lock()
	var failed []notify.Event
	for _, ev := range notifier.events {
		if ev.Kind == "failure" {
			failed = append(failed, ev)
		}
	}
	notifier.mu.Unlock()
	if len(failed) != 1 || failed[0].Title != "prune of repository r failed" || failed[0].Message != "prune: disk full" || failed[0].Fields["repository"] != "r" {
		t.Errorf("failure notifications: %+v", failed)
	}

	st := d.apiStatus()
	if len(st.Repositories) != 1 || st.Repositories[0].Name != "r" {
		t.Fatalf("API repositories: %+v", st.Repositories)
	}
	ar := st.Repositories[0]
	if ar.Check.Schedule != "every 1h" || !ar.Check.NextRun.Equal(time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)) ||
		ar.Check.LastSuccess == nil || ar.Check.LastSuccess.Log != "" || ar.Prune.LastRun == nil || ar.Prune.LastRun.Result != state.ResultFailed {
		t.Errorf("API repository: check %+v, prune %+v", ar.Check, ar.Prune)
	}

	// The API starts a check now (a minute later: runs at the same
	// instant have no order); an unknown repository is refused.
	clock.Advance(time.Minute)
	h := d.Handler(HandlerOptions{Token: "tok"})
	if w := serve(h, http.MethodPost, "/api/v1/repositories/r/check", "Bearer tok"); w.Code != http.StatusAccepted {
		t.Fatalf("POST check: %d %s", w.Code, w.Body)
	}
	waitCount(t, &runner.stubRunner, "check:r", 3)
	idle(t, d)
	if w := serve(h, http.MethodPost, "/api/v1/repositories/nope/prune", "Bearer tok"); w.Code != http.StatusConflict {
		t.Errorf("POST prune of an unknown repository: %d %s", w.Code, w.Body)
	}
	if r, _ := store.LastRun("r", state.KindCheck); r == nil || r.Trigger != state.TriggerAPI {
		t.Errorf("the API's check: %+v", r)
	}
	// A run recorded by hand may name a repository's check.
	if err := d.RecordRun(&state.Run{Job: "plain", Kind: state.KindCheck, Result: state.ResultSuccess, Started: clock.Now(), Finished: clock.Now()}); err != nil {
		t.Errorf("record a manual check: %v", err)
	}
	if err := d.RecordRun(&state.Run{Job: "nope", Kind: state.KindPrune, Result: state.ResultSuccess, Started: clock.Now(), Finished: clock.Now()}); err == nil {
		t.Error("a manual prune of an unknown repository was recorded")
	}
}

// TestRepositoryTasksNeedTheirRunner: a runner that cannot check or
// prune repositories leaves their schedules alone, and the API says so.
func TestRepositoryTasksNeedTheirRunner(t *testing.T) {
	dir := t.TempDir()
	clock := NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	runner := &stubRunner{runs: map[string]int{}}
	d, stop := startTestDaemon(t, repoTasksPlan, runner, clock, dir)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clock.WaitSleepers(ctx, 1)
	clock.Advance(2 * time.Hour)
	clock.WaitSleepers(ctx, 1)
	if running := d.Running(); len(running) != 0 {
		t.Errorf("running: %v", running)
	}
	if err := d.TriggerCheck("r"); err == nil {
		t.Error("a check started without a runner for it")
	}
}
