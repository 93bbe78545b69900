package daemon

import (
	"context"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/monitor"
	"github.com/bunkerbackup/bunker/internal/notify"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/state"
)

func TestFakeClock(t *testing.T) {
	c := NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	woke := make(chan bool, 1)
	go func() { woke <- c.Sleep(context.Background(), time.Hour) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !c.WaitSleepers(ctx, 1) {
		t.Fatal("no sleeper")
	}
	c.Advance(59 * time.Minute)
	select {
	case <-woke:
		t.Fatal("woke early")
	case <-time.After(20 * time.Millisecond):
	}
	c.Advance(time.Minute)
	if !<-woke {
		t.Fatal("sleep reported a cancel")
	}
	cctx, ccancel := context.WithCancel(context.Background())
	go func() { woke <- c.Sleep(cctx, time.Hour) }()
	c.WaitSleepers(ctx, 1)
	ccancel()
	if <-woke {
		t.Fatal("a cancelled sleep reported success")
	}
}

// stubRunner counts runs; jobs block until released.
type stubRunner struct {
	mu      sync.Mutex
	runs    map[string]int
	active  atomic.Int32
	maxSeen atomic.Int32
	release chan struct{}
}

func (s *stubRunner) RunJob(ctx context.Context, p *plan.Plan, j *plan.Job, log io.Writer) (JobOutcome, error) {
	n := s.active.Add(1)
	defer s.active.Add(-1)
	for {
		m := s.maxSeen.Load()
		if n <= m || s.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	if s.release != nil {
		select {
		case <-s.release:
		case <-ctx.Done():
			return JobOutcome{}, ctx.Err()
		}
	}
	s.mu.Lock()
	s.runs[j.Name]++
	s.mu.Unlock()
	return JobOutcome{Snapshot: "s"}, nil
}

func (s *stubRunner) RunDrill(ctx context.Context, p *plan.Plan, d *plan.Drill, log io.Writer) (DrillOutcome, error) {
	return DrillOutcome{}, nil
}

func (s *stubRunner) Measure(ctx context.Context, p *plan.Plan, now time.Time, known map[string]monitor.SnapshotRef) *monitor.Status {
	return monitor.Evaluate(p, nil, now, known)
}

func (s *stubRunner) Snapshots(ctx context.Context, p *plan.Plan, repo string) ([]SnapshotInfo, error) {
	return nil, nil
}

func (s *stubRunner) count(job string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[job]
}

type nopNotifier struct{ events atomic.Int32 }

func (n *nopNotifier) Notify(ctx context.Context, ev notify.Event) error { n.events.Add(1); return nil }
func (n *nopNotifier) Ping(ctx context.Context, job, stage, body string) error {
	return nil
}

const twoJobs = `repositories:
  - {name: r, location: /r, password: env:P}
jobs:
  - {name: a, source: {type: files, paths: [/a]}, schedule: every 1h, repository: r}
  - {name: b, source: {type: files, paths: [/b]}, schedule: every 1h, repository: r}
`

// testPlanStore parses the plan src and opens a run history in dir on
// the clock: what every daemon test starts from. The caller closes the
// store.
func testPlanStore(t *testing.T, src string, clock *FakeClock, dir string) (*plan.Plan, *state.Store) {
	t.Helper()
	p, err := plan.Parse("p.yaml", []byte(src), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.Open(filepath.Join(dir, "state.db"), state.Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return p, store
}

func startTestDaemon(t *testing.T, src string, runner *stubRunner, clock *FakeClock, dir string) (d *Daemon, stop func()) {
	t.Helper()
	p, store := testPlanStore(t, src, clock, dir)
	d, err := New(Options{Plan: p, Runner: runner, Store: store, Clock: clock, Notifier: &nopNotifier{}, MeasureEvery: 24 * time.Hour, ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	return d, func() { cancel(); <-done; store.Close() }
}

// idle waits until no job runs.
func idle(t *testing.T, d *Daemon) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(d.Running()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still running: %v", d.Running())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitCount(t *testing.T, r *stubRunner, job string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.count(job) < n {
		if time.Now().After(deadline) {
			t.Fatalf("job %s ran %d times, want %d", job, r.count(job), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestScheduleOncePerSlot: each slot runs each job once; two jobs on one
// repository never run at once (max_per_repository 1); after downtime
// one catch-up run covers all missed slots.
func TestScheduleOncePerSlot(t *testing.T) {
	dir := t.TempDir()
	clock := NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	runner := &stubRunner{runs: map[string]int{}}
	d, stop := startTestDaemon(t, twoJobs, runner, clock, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 1; i <= 3; i++ {
		clock.WaitSleepers(ctx, 1)
		clock.Advance(time.Hour)
		waitCount(t, runner, "a", i)
		waitCount(t, runner, "b", i)
		idle(t, d)
	}
	if m := runner.maxSeen.Load(); m != 1 {
		t.Errorf("%d jobs ran at once on one repository", m)
	}
	stop()

	// Five hours off: one catch-up run each.
	clock.Advance(5 * time.Hour)
	_, stop = startTestDaemon(t, twoJobs, runner, clock, dir)
	waitCount(t, runner, "a", 4)
	waitCount(t, runner, "b", 4)
	clock.WaitSleepers(ctx, 1)
	time.Sleep(50 * time.Millisecond)
	if a, b := runner.count("a"), runner.count("b"); a != 4 || b != 4 {
		t.Errorf("after downtime: a ran %d, b %d times in all, want 4", a, b)
	}
	stop()
}

// TestSlotSkippedWhileRunning: a slot that comes while the job still runs
// is skipped, not queued.
func TestSlotSkippedWhileRunning(t *testing.T) {
	dir := t.TempDir()
	clock := NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	runner := &stubRunner{runs: map[string]int{}, release: make(chan struct{})}
	src := `repositories:
  - {name: r, location: /r, password: env:P}
jobs:
  - {name: a, source: {type: files, paths: [/a]}, schedule: every 1h, repository: r}
`
	_, stop := startTestDaemon(t, src, runner, clock, dir)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clock.WaitSleepers(ctx, 1)
	clock.Advance(time.Hour)
	for runner.active.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	clock.WaitSleepers(ctx, 1)
	clock.Advance(time.Hour) // the next slot, while the first run blocks
	clock.WaitSleepers(ctx, 1)
	close(runner.release)
	waitCount(t, runner, "a", 1)
	time.Sleep(50 * time.Millisecond)
	if n := runner.count("a"); n != 1 {
		t.Errorf("a ran %d times, want 1 (the second slot came while it ran)", n)
	}
}
