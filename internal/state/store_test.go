package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"
)

// clock is a settable fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

func dbPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "state", "state.db")
}

func open(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newStore(t *testing.T) (*Store, *clock) {
	c := newClock()
	return open(t, dbPath(t), Options{Clock: c.Now}), c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// same compares runs by their JSON form (times compare by instant and
// zone, not by pointer).
func same(t *testing.T, got, want *Run) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("run differs:\n got %s\nwant %s", g, w)
	}
}

func ids(runs []*Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		err  string
	}{
		{Options{}, ""},
		{Options{KeepRuns: 5, LockTimeout: time.Millisecond}, ""},
		{Options{KeepRuns: -1}, "KeepRuns -1 is negative"},
		{Options{LockTimeout: -time.Second}, "LockTimeout -1s is negative"},
	} {
		err := tc.opts.Validate()
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.opts, err, tc.err)
		}
		if tc.err != "" {
			if _, err := Open(dbPath(t), tc.opts); err == nil {
				t.Errorf("Open with %+v succeeded", tc.opts)
			}
		}
	}
}

func TestRunLifecycle(t *testing.T) {
	s, c := newStore(t)
	sched := c.Now().Add(-time.Minute)
	r := &Run{Job: "pg", Kind: KindBackup, Trigger: TriggerSchedule, Scheduled: sched, Attempt: 1,
		Repository: "local", Log: "starting\n", Result: "whatever", Finished: sched}
	must(t, s.StartRun(r))
	if r.ID == "" || r.Result != ResultRunning || !r.Started.Equal(c.Now()) || !r.Finished.IsZero() {
		t.Fatalf("StartRun left %+v", r)
	}
	if !strings.HasPrefix(r.ID, "20260314T120000.000Z-") || len(r.ID) != len("20260314T120000.000Z-")+8 {
		t.Errorf("ID %q is not time-based", r.ID)
	}
	got, err := s.Run(r.ID)
	must(t, err)
	same(t, got, r)
	if last, err := s.LastSuccess("pg", KindBackup); err != nil || last != nil {
		t.Fatalf("LastSuccess of a running job = %v, %v", last, err)
	}

	c.Advance(time.Minute)
	r.Result, r.Snapshot, r.BytesRead, r.BytesAdded = ResultSuccess, "3fa9c2", 1000, 10
	r.Log += "done\n"
	must(t, s.FinishRun(r))
	if !r.Finished.Equal(c.Now()) {
		t.Fatalf("Finished = %v, want %v", r.Finished, c.Now())
	}
	got, err = s.Run(r.ID)
	must(t, err)
	same(t, got, r)
	for _, f := range []func(string, string) (*Run, error){s.LastRun, s.LastSuccess} {
		last, err := f("pg", "")
		must(t, err)
		same(t, last, r)
	}
	if rec, err := s.Recover("restart"); err != nil || len(rec) != 0 {
		t.Fatalf("Recover with nothing running = %v, %v", rec, err)
	}

	// A caller-chosen ID and explicit times are kept.
	d := &Run{ID: "drill-1", Job: "pg-drill", Kind: KindDrill, Started: c.Now().Add(-time.Hour)}
	must(t, s.StartRun(d))
	d.Result, d.Finished, d.RestoreSeconds = ResultFailed, c.Now().Add(-time.Minute), 12.5
	d.Error = "check failed"
	must(t, s.FinishRun(d))
	got, err = s.Run("drill-1")
	must(t, err)
	same(t, got, d)
}

func TestStartRunErrors(t *testing.T) {
	s, _ := newStore(t)
	must(t, s.StartRun(&Run{ID: "dup", Job: "a"}))
	for _, tc := range []struct {
		name string
		run  *Run
		err  string
	}{
		{"nil", nil, "nil run"},
		{"no job", &Run{Kind: KindBackup}, "empty job name"},
		{"duplicate", &Run{ID: "dup", Job: "a"}, "run dup already exists"},
		{"long ID", &Run{ID: strings.Repeat("x", 300), Job: "a"}, "too long"},
		{"long job", &Run{Job: strings.Repeat("x", 5000)}, "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.StartRun(tc.run)
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), s.Path()) {
				t.Fatalf("StartRun = %v, want an error naming the DB and %q", err, tc.err)
			}
		})
	}
}

func TestFinishRunErrors(t *testing.T) {
	s, _ := newStore(t)
	r := &Run{Job: "a", Kind: KindBackup}
	must(t, s.StartRun(r))
	for _, tc := range []struct {
		name     string
		run      *Run
		err      string
		notFound bool
	}{
		{"nil", nil, "nil run", false},
		{"unknown", &Run{ID: "nope", Job: "a", Result: ResultSuccess}, "run nope: not found", true},
		{"still running", &Run{ID: r.ID, Job: "a", Result: ResultRunning}, `result "running" is not a final result`, false},
		{"no result", &Run{ID: r.ID, Job: "a"}, `result "" is not a final result`, false},
		{"no ID", &Run{Job: "a", Result: ResultFailed}, "empty run ID", false},
		{"no job", &Run{ID: r.ID, Result: ResultFailed}, "empty job name", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.FinishRun(tc.run)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("FinishRun = %v, want %q", err, tc.err)
			}
			if errors.Is(err, ErrNotFound) != tc.notFound {
				t.Fatalf("errors.Is(%v, ErrNotFound) = %v", err, !tc.notFound)
			}
		})
	}
	if got, err := s.Run(r.ID); err != nil || got.Result != ResultRunning {
		t.Fatalf("failed FinishRuns changed the run: %+v, %v", got, err)
	}
	if _, err := s.Run("nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "run nope") {
		t.Fatalf("Run(unknown) = %v", err)
	}
}

// history makes runs of several jobs whose IDs do not sort like their
// start times, so that ordering by start is tested.
func history(t *testing.T, s *Store, base time.Time) map[string]*Run {
	runs := map[string]*Run{}
	for _, x := range []struct {
		id, job, kind, result string
		min                   int
	}{
		{"z1", "pg", KindBackup, ResultSuccess, 1},
		{"a2", "pg", KindBackup, ResultFailed, 2},
		{"m3", "pg", KindCopy, ResultSuccess, 3},
		{"b4", "files", KindBackup, ResultSuccess, 4},
		{"y5", "pg", KindBackup, ResultCancelled, 5},
		{"c6", "files", KindBackup, ResultRunning, 6},
	} {
		r := &Run{ID: x.id, Job: x.job, Kind: x.kind, Started: base.Add(time.Duration(x.min) * time.Minute)}
		must(t, s.StartRun(r))
		if x.result != ResultRunning {
			r.Result = x.result
			must(t, s.FinishRun(r))
		}
		runs[x.id] = r
	}
	return runs
}

func TestRunsAndLast(t *testing.T) {
	s, c := newStore(t)
	runs := history(t, s, c.Now())
	for _, tc := range []struct {
		job   string
		limit int
		want  string
	}{
		{"", 0, "c6 y5 b4 m3 a2 z1"},
		{"", 2, "c6 y5"},
		{"", -1, "c6 y5 b4 m3 a2 z1"},
		{"pg", 0, "y5 m3 a2 z1"},
		{"pg", 3, "y5 m3 a2"},
		{"files", 10, "c6 b4"},
		{"nope", 0, ""},
	} {
		got, err := s.Runs(tc.job, tc.limit)
		must(t, err)
		if g := strings.Join(ids(got), " "); g != tc.want {
			t.Errorf("Runs(%q, %d) = %s, want %s", tc.job, tc.limit, g, tc.want)
		}
		for _, r := range got {
			same(t, r, runs[r.ID])
		}
	}
	for _, tc := range []struct {
		job, kind   string
		last, succ  string
		description string
	}{
		{"pg", KindBackup, "y5", "z1", "a cancelled and a failed run after the success"},
		{"pg", "", "y5", "m3", "any kind"},
		{"pg", KindCopy, "m3", "m3", "copy"},
		{"files", KindBackup, "c6", "b4", "running counts as last run, not success"},
		{"", "", "c6", "b4", "any job"},
		{"", KindBackup, "c6", "b4", "any job, backups"},
		{"pg", KindDrill, "", "", "no drills"},
		{"nope", "", "", "", "no such job"},
	} {
		for _, f := range []struct {
			name string
			fn   func(string, string) (*Run, error)
			want string
		}{{"LastRun", s.LastRun, tc.last}, {"LastSuccess", s.LastSuccess, tc.succ}} {
			got, err := f.fn(tc.job, tc.kind)
			must(t, err)
			switch {
			case f.want == "" && got != nil:
				t.Errorf("%s(%q, %q) (%s) = %s, want none", f.name, tc.job, tc.kind, tc.description, got.ID)
			case f.want != "" && (got == nil || got.ID != f.want):
				t.Errorf("%s(%q, %q) (%s) = %v, want %s", f.name, tc.job, tc.kind, tc.description, got, f.want)
			}
		}
	}
}

func TestFinishRunMovesIndexes(t *testing.T) {
	s, c := newStore(t)
	r := &Run{ID: "r", Job: "a", Kind: KindBackup}
	must(t, s.StartRun(r))
	// The caller corrects job and start time when finishing.
	r.Job, r.Started, r.Result = "b", c.Now().Add(-time.Hour), ResultSuccess
	must(t, s.FinishRun(r))
	for job, want := range map[string]string{"a": "", "b": "r", "": "r"} {
		got, err := s.Runs(job, 0)
		must(t, err)
		if g := strings.Join(ids(got), " "); g != want {
			t.Errorf("Runs(%q) = %q, want %q", job, g, want)
		}
	}
}

func TestPrune(t *testing.T) {
	c := newClock()
	s := open(t, dbPath(t), Options{Clock: c.Now, KeepRuns: 3})
	running := &Run{ID: "running", Job: "a", Kind: KindBackup, Log: "log"}
	must(t, s.StartRun(running)) // oldest, but never pruned
	other := &Run{ID: "other", Job: "b", Kind: KindBackup, Log: "keep me"}
	must(t, s.StartRun(other))
	other.Result = ResultSuccess
	must(t, s.FinishRun(other))
	for i := range 6 {
		c.Advance(time.Minute)
		r := &Run{ID: fmt.Sprint("r", i), Job: "a", Kind: KindBackup, Log: "log"}
		must(t, s.StartRun(r))
		r.Result = ResultSuccess
		must(t, s.FinishRun(r))
	}
	for job, want := range map[string]string{"a": "r5 r4 r3 running", "b": "other", "": "r5 r4 r3 running other"} {
		got, err := s.Runs(job, 0)
		must(t, err)
		if g := strings.Join(ids(got), " "); g != want {
			t.Errorf("Runs(%q) = %q, want %q", job, g, want)
		}
	}
	for _, id := range []string{"r0", "r1", "r2"} {
		if _, err := s.Run(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("pruned run %s: %v", id, err)
		}
	}
	// The pruned runs left nothing behind in any bucket.
	must(t, s.db.View(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketRuns, bucketLogs, bucketOrder} {
			if n := tx.Bucket(b).Stats().KeyN; n != 5 {
				t.Errorf("bucket %s has %d keys, want 5", b, n)
			}
		}
		return nil
	}))
	// The interrupted run now counts: recovering it prunes r3.
	rec, err := s.Recover("crash")
	must(t, err)
	if len(rec) != 1 || rec[0].ID != "running" {
		t.Fatalf("Recover = %v", ids(rec))
	}
	got, err := s.Runs("a", 0)
	must(t, err)
	if g := strings.Join(ids(got), " "); g != "r5 r4 r3" {
		t.Errorf("after Recover Runs(a) = %q", g)
	}
}

func TestLogTail(t *testing.T) {
	s, _ := newStore(t)
	// "é" is 2 bytes; the cut falls in the middle of one.
	log := "head\n" + strings.Repeat("é", MaxLog/2) + "tail\n"
	r := &Run{Job: "a", Log: log}
	must(t, s.StartRun(r))
	if len(r.Log) > MaxLog || !utf8.ValidString(r.Log) || !strings.HasSuffix(r.Log, "éétail\n") || len(r.Log) < MaxLog-utf8.UTFMax {
		t.Fatalf("log tail of %d bytes, valid %v, ends %q", len(r.Log), utf8.ValidString(r.Log), r.Log[len(r.Log)-10:])
	}
	got, err := s.Run(r.ID)
	must(t, err)
	if got.Log != r.Log {
		t.Fatal("stored log differs from the trimmed one")
	}
	r.Result, r.Log = ResultSuccess, ""
	must(t, s.FinishRun(r))
	got, err = s.Run(r.ID)
	must(t, err)
	if got.Log != "" {
		t.Fatalf("cleared log reads back as %d bytes", len(got.Log))
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"short", "short"},
		{strings.Repeat("a", MaxLog), strings.Repeat("a", MaxLog)},
		{"x" + strings.Repeat("a", MaxLog), strings.Repeat("a", MaxLog)},
		{"€" + strings.Repeat("a", MaxLog-1), strings.Repeat("a", MaxLog-1)},
	} {
		if got := TrimLog(tc.in); got != tc.want {
			t.Errorf("TrimLog(%d bytes) = %d bytes, want %d", len(tc.in), len(got), len(tc.want))
		}
	}
}

func TestSlots(t *testing.T) {
	s, c := newStore(t)
	t0 := c.Now()
	last, err := s.LastSlot("a")
	must(t, err)
	if !last.IsZero() {
		t.Fatalf("LastSlot of a new job = %v", last)
	}
	for i, step := range []struct {
		op   string // claim | set
		at   time.Duration
		want bool
		last time.Duration
	}{
		{"claim", 0, true, 0},
		{"claim", 0, false, 0},
		{"claim", -time.Hour, false, 0},
		{"claim", time.Hour, true, time.Hour},
		{"claim", time.Hour + time.Nanosecond, true, time.Hour + time.Nanosecond},
		{"set", 0, false, 0}, // moves back
		{"claim", 30 * time.Minute, true, 30 * time.Minute},
	} {
		at := t0.Add(step.at)
		if step.op == "set" {
			must(t, s.SetLastSlot("a", at))
		} else {
			won, err := s.ClaimSlot("a", at)
			must(t, err)
			if won != step.want {
				t.Fatalf("step %d: ClaimSlot(%v) = %v, want %v", i, step.at, won, step.want)
			}
		}
		last, err := s.LastSlot("a")
		must(t, err)
		if !last.Equal(t0.Add(step.last)) {
			t.Fatalf("step %d: LastSlot = %v, want %v", i, last, t0.Add(step.last))
		}
	}
	if last, _ := s.LastSlot("b"); !last.IsZero() {
		t.Fatalf("another job's slot = %v", last)
	}
	if _, err := s.ClaimSlot("", t0); err == nil {
		t.Fatal("ClaimSlot of an empty job name succeeded")
	}
	if err := s.SetLastSlot("", t0); err == nil {
		t.Fatal("SetLastSlot of an empty job name succeeded")
	}
}

func TestClaimSlotRace(t *testing.T) {
	s, c := newStore(t)
	const workers, slots = 8, 10
	var wins [slots]atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range slots {
				won, err := s.ClaimSlot("a", c.Now().Add(time.Duration(i)*time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				if won {
					wins[i].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for i := range wins {
		if n := wins[i].Load(); n != 1 {
			t.Errorf("slot %d won %d times, want exactly once", i, n)
		}
	}
}

func TestConcurrentRuns(t *testing.T) {
	c := newClock()
	s := open(t, dbPath(t), Options{Clock: c.Now, KeepRuns: 5})
	const workers, each = 6, 8
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				r := &Run{Job: fmt.Sprint("job", w%2), Kind: KindBackup}
				if err := s.StartRun(r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[r.ID] = true
				mu.Unlock()
				if _, err := s.Runs("", 3); err != nil {
					t.Error(err)
				}
				r.Result = ResultSuccess
				if err := s.FinishRun(r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != workers*each {
		t.Fatalf("%d unique IDs for %d runs (IDs collided while the clock stood still)", len(seen), workers*each)
	}
	for _, job := range []string{"job0", "job1"} {
		got, err := s.Runs(job, 0)
		must(t, err)
		if len(got) != 5 {
			t.Errorf("%s keeps %d runs, want 5", job, len(got))
		}
	}
}

func TestSizes(t *testing.T) {
	s, c := newStore(t)
	t0 := c.Now()
	paris := time.FixedZone("CET", 3600)
	for i, n := range []int64{100, 200, 300, 400} {
		must(t, s.RecordSize("r1", t0.Add(time.Duration(i)*time.Hour).In(paris), n))
	}
	must(t, s.RecordSize("r1", t0.Add(3*time.Hour), 450)) // same instant: replaces
	must(t, s.RecordSize("r2", t0, 7))
	must(t, s.RecordSize("r1", time.Date(1900, 1, 1, 0, 0, 0, 5, time.UTC), 1)) // before 1970 sorts first
	for _, tc := range []struct {
		repo  string
		since time.Time
		want  string
	}{
		{"r1", time.Time{}, "1 100 200 300 450"},
		{"r1", t0.Add(time.Hour), "200 300 450"},
		{"r1", t0.Add(time.Hour + 1), "300 450"},
		{"r1", t0.Add(10 * time.Hour), ""},
		{"r2", time.Time{}, "7"},
		{"r3", time.Time{}, ""},
	} {
		got, err := s.Sizes(tc.repo, tc.since)
		must(t, err)
		var parts []string
		for _, p := range got {
			parts = append(parts, fmt.Sprint(p.Bytes))
			if p.Time.Location() != time.UTC {
				t.Errorf("size time %v not in UTC", p.Time)
			}
		}
		if g := strings.Join(parts, " "); g != tc.want {
			t.Errorf("Sizes(%s, %v) = %q, want %q", tc.repo, tc.since, g, tc.want)
		}
	}
	got, _ := s.Sizes("r1", t0.Add(2*time.Hour))
	if len(got) != 2 || !got[0].Time.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("Sizes times: %v", got)
	}
	if err := s.RecordSize("r1", t0, -1); err == nil {
		t.Fatal("negative size accepted")
	}
	if err := s.RecordSize("", t0, 1); err == nil {
		t.Fatal("empty repository name accepted")
	}
}

func TestAlerts(t *testing.T) {
	s, c := newStore(t)
	t0 := c.Now()
	for i, step := range []struct {
		key     string
		active  bool
		at      time.Duration
		changed bool
	}{
		{"rpo:pg", false, 0, false},
		{"rpo:pg", true, 0, true},
		{"rpo:pg", true, time.Minute, false}, // still active: since stays t0
		{"failed:files", true, 2 * time.Minute, true},
		{"rpo:pg", false, 3 * time.Minute, true},
		{"rpo:pg", false, 4 * time.Minute, false},
		{"rpo:pg", true, 5 * time.Minute, true}, // a new incident
	} {
		changed, err := s.SetAlert(step.key, step.active, t0.Add(step.at))
		must(t, err)
		if changed != step.changed {
			t.Fatalf("step %d: SetAlert(%s, %v) changed = %v, want %v", i, step.key, step.active, changed, step.changed)
		}
	}
	got, err := s.Alerts()
	must(t, err)
	want := map[string]time.Time{"rpo:pg": t0.Add(5 * time.Minute), "failed:files": t0.Add(2 * time.Minute)}
	if len(got) != len(want) {
		t.Fatalf("Alerts = %v, want %v", got, want)
	}
	for k, since := range want {
		if !got[k].Equal(since) {
			t.Errorf("alert %s since %v, want %v", k, got[k], since)
		}
	}
	if _, err := s.SetAlert("", true, t0); err == nil {
		t.Fatal("empty alert key accepted")
	}
}

func TestPersistence(t *testing.T) {
	path := dbPath(t)
	c := newClock()
	s, err := Open(path, Options{Clock: c.Now})
	must(t, err)
	runs := history(t, s, c.Now())
	must(t, s.SetLastSlot("pg", c.Now()))
	must(t, s.RecordSize("r", c.Now(), 42))
	_, err = s.SetAlert("rpo:pg", true, c.Now())
	must(t, err)
	must(t, s.Close())
	must(t, s.Close()) // twice is harmless
	if _, err := s.Runs("", 0); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Runs on a closed store = %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v", fi.Mode(), err)
	}

	s = open(t, path, Options{Clock: c.Now})
	all, err := s.Runs("", 0)
	must(t, err)
	if len(all) != len(runs) {
		t.Fatalf("%d runs after reopen, want %d", len(all), len(runs))
	}
	for _, r := range all {
		same(t, r, runs[r.ID])
	}
	if last, err := s.LastSlot("pg"); err != nil || !last.Equal(c.Now()) {
		t.Fatalf("LastSlot after reopen = %v, %v", last, err)
	}
	if won, err := s.ClaimSlot("pg", c.Now()); err != nil || won {
		t.Fatalf("a slot claimed before the restart was claimed again: %v, %v", won, err)
	}
	if sizes, err := s.Sizes("r", time.Time{}); err != nil || len(sizes) != 1 || sizes[0].Bytes != 42 {
		t.Fatalf("Sizes after reopen = %v, %v", sizes, err)
	}
	if alerts, err := s.Alerts(); err != nil || !alerts["rpo:pg"].Equal(c.Now()) {
		t.Fatalf("Alerts after reopen = %v, %v", alerts, err)
	}
}

func TestRecoverAfterCrash(t *testing.T) {
	path := dbPath(t)
	c := newClock()
	s, err := Open(path, Options{Clock: c.Now})
	must(t, err)
	runs := history(t, s, c.Now()) // c6 is left running
	late := &Run{ID: "d7", Job: "drill", Kind: KindDrill, Started: c.Now().Add(10 * time.Minute), Log: "restoring…\n"}
	must(t, s.StartRun(late))
	must(t, s.Close()) // "crash": the runs never finish

	c.Advance(time.Hour)
	s = open(t, path, Options{Clock: c.Now})
	for _, id := range []string{"c6", "d7"} {
		if r, err := s.Run(id); err != nil || r.Result != ResultRunning {
			t.Fatalf("run %s after restart: %+v, %v", id, r, err)
		}
	}
	rec, err := s.Recover("daemon was not shut down cleanly")
	must(t, err)
	if g := strings.Join(ids(rec), " "); g != "c6 d7" {
		t.Fatalf("Recover = %s, want c6 d7 (oldest first)", g)
	}
	for _, r := range rec {
		got, err := s.Run(r.ID)
		must(t, err)
		same(t, got, r)
		if r.Result != ResultInterrupted || r.Reason != "daemon was not shut down cleanly" || !r.Finished.Equal(c.Now()) {
			t.Errorf("recovered run %+v", r)
		}
	}
	if got, _ := s.Run("d7"); got.Log != late.Log {
		t.Errorf("recovered run lost its log: %q", got.Log)
	}
	if got, _ := s.Run("b4"); got.Result != runs["b4"].Result {
		t.Errorf("Recover touched a finished run: %+v", got)
	}
	if again, err := s.Recover("again"); err != nil || len(again) != 0 {
		t.Fatalf("second Recover = %v, %v", ids(again), err)
	}
}

func TestOpenInUse(t *testing.T) {
	path := dbPath(t)
	s := open(t, path, Options{})
	_, err := Open(path, Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "state DB "+path+" is in use by another bunker daemon") {
		t.Fatalf("second Open = %v", err)
	}
	must(t, s.Close())
	s2 := open(t, path, Options{LockTimeout: 50 * time.Millisecond})
	must(t, s2.Close())
}

// rawUpdate edits a closed state file behind the store's back.
func rawUpdate(t *testing.T, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	must(t, err)
	must(t, db.Update(fn))
	must(t, db.Close())
}

func TestOpenRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string)
		err   string
	}{
		{"newer version", func(t *testing.T, path string) {
			rawUpdate(t, path, func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte("2")) })
		}, "format version 2 is newer than this bunker understands (1): upgrade bunker"},
		{"corrupt version", func(t *testing.T, path string) {
			rawUpdate(t, path, func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte(`"1`)) })
		}, "corrupt value at meta/version"},
		{"zero version", func(t *testing.T, path string) {
			rawUpdate(t, path, func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte(`0`)) })
		}, "corrupt value at meta/version: version 0"},
		{"no version", func(t *testing.T, path string) {
			rawUpdate(t, path, func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyVersion) })
		}, "missing meta/version"},
		{"foreign bbolt file", func(t *testing.T, path string) {
			must(t, os.Remove(path))
			rawUpdate(t, path, func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
		}, `not a bunker state DB (it has bucket "other" but no "meta")`},
		{"garbage", func(t *testing.T, path string) {
			must(t, os.WriteFile(path, []byte(strings.Repeat("not a database\n", 1000)), 0o600))
		}, "not a valid database file"},
		{"truncated", func(t *testing.T, path string) {
			data, err := os.ReadFile(path)
			must(t, err)
			must(t, os.WriteFile(path, data[:100], 0o600))
		}, "state DB " /* bbolt's own words; any error, no panic */},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := dbPath(t)
			s, err := Open(path, Options{})
			must(t, err)
			must(t, s.Close())
			tc.setup(t, path)
			s, err = Open(path, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open = %v, want %q", err, tc.err)
			}
			if testing.Verbose() {
				t.Log(err)
			}
		})
	}
}

func TestCorruptValues(t *testing.T) {
	t0 := newClock().Now()
	for _, tc := range []struct {
		name    string
		corrupt func(tx *bbolt.Tx) error
		call    func(s *Store) error
		err     string
	}{
		{"run truncated", putRaw(bucketRuns, "r1", `{"id":"r1","job":"a"`),
			func(s *Store) error { _, err := s.Run("r1"); return err }, "corrupt value at runs/r1: unexpected end of JSON input"},
		{"run other ID", putRaw(bucketRuns, "r1", `{"id":"r2","job":"a","result":"success","started":"2026-03-14T12:00:00Z"}`),
			func(s *Store) error { _, err := s.Runs("a", 0); return err }, `corrupt value at runs/r1: it holds run "r2"`},
		{"run no job", putRaw(bucketRuns, "r1", `{"id":"r1","result":"success"}`),
			func(s *Store) error { _, err := s.LastRun("", ""); return err }, "corrupt value at runs/r1: no job"},
		{"run wrong type", putRaw(bucketRuns, "r1", `{"id":"r1","job":"a","attempt":"two"}`),
			func(s *Store) error { _, err := s.LastSuccess("a", ""); return err }, "corrupt value at runs/r1"},
		{"running run garbage", putRaw(bucketRuns, "r1", "\x00\xff"),
			func(s *Store) error { _, err := s.Recover("x"); return err }, "corrupt value at runs/r1"},
		{"finish corrupt run", putRaw(bucketRuns, "r1", "[]"),
			func(s *Store) error { return s.FinishRun(&Run{ID: "r1", Job: "a", Result: ResultSuccess}) }, "corrupt value at runs/r1"},
		{"index to missing run", func(tx *bbolt.Tx) error { return tx.Bucket(bucketRuns).Delete([]byte("r1")) },
			func(s *Store) error { _, err := s.Runs("", 0); return err }, "run r1 is missing"},
		{"short index key", func(tx *bbolt.Tx) error { return tx.Bucket(bucketJobs).Bucket([]byte("a")).Put([]byte("x"), present) },
			func(s *Store) error { _, err := s.Runs("a", 0); return err }, "jobs/a: corrupt index key 78: too short"},
		{"slot", putRaw(bucketSlots, "a", `"yesterday"`),
			func(s *Store) error { _, err := s.ClaimSlot("a", t0); return err }, "corrupt value at slots/a"},
		{"slot read", putRaw(bucketSlots, "a", `12`),
			func(s *Store) error { _, err := s.LastSlot("a"); return err }, "corrupt value at slots/a"},
		{"size", func(tx *bbolt.Tx) error {
			b, err := tx.Bucket(bucketSizes).CreateBucketIfNotExists([]byte("repo"))
			if err != nil {
				return err
			}
			return b.Put(timeKey(t0), []byte("1e999"))
		}, func(s *Store) error { _, err := s.Sizes("repo", time.Time{}); return err }, "corrupt value at sizes/repo/"},
		{"size key", func(tx *bbolt.Tx) error {
			b, err := tx.Bucket(bucketSizes).CreateBucketIfNotExists([]byte("repo"))
			if err != nil {
				return err
			}
			return b.Put([]byte("\xffyesterday!"), []byte("1"))
		}, func(s *Store) error { _, err := s.Sizes("repo", time.Time{}); return err }, "corrupt key in sizes/repo"},
		{"alert", putRaw(bucketAlerts, "rpo:a", `{"since":1}`),
			func(s *Store) error { _, err := s.Alerts(); return err }, "corrupt value at alerts/rpo:a"},
		{"alert set", putRaw(bucketAlerts, "rpo:a", `{`),
			func(s *Store) error { _, err := s.SetAlert("rpo:a", false, t0); return err }, "corrupt value at alerts/rpo:a"},
		{"bucket missing", func(tx *bbolt.Tx) error { return tx.DeleteBucket(bucketAlerts) },
			func(s *Store) error { _, err := s.Alerts(); return err }, ""}, // Open recreates it
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := dbPath(t)
			s, err := Open(path, Options{Clock: newClock().Now})
			must(t, err)
			must(t, s.StartRun(&Run{ID: "r1", Job: "a", Kind: KindBackup}))
			must(t, s.Close())
			rawUpdate(t, path, tc.corrupt)
			s = open(t, path, Options{})
			err = tc.call(s)
			if tc.err == "" {
				must(t, err)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v, want an error naming %s and %q", err, path, tc.err)
			}
		})
	}
}

func putRaw(bucket []byte, key, value string) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), []byte(value)) }
}

const childEnv = "BUNKER_STATE_TEST_CHILD"

// TestKillChild is the daemon TestKillDashNine kills: it finishes one
// run, starts another, reports both and waits to be killed.
func TestKillChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("runs only as a child of TestKillDashNine")
	}
	s, err := Open(path, Options{})
	must(t, err)
	done := &Run{Job: "pg", Kind: KindBackup, Trigger: TriggerSchedule}
	must(t, s.StartRun(done))
	done.Result = ResultSuccess
	must(t, s.FinishRun(done))
	busy := &Run{Job: "pg", Kind: KindBackup, Trigger: TriggerSchedule, Log: "dumping\n"}
	must(t, s.StartRun(busy))
	won, err := s.ClaimSlot("pg", time.Unix(1e9, 0))
	must(t, err)
	fmt.Printf("\nstarted %s %s %v\n", done.ID, busy.ID, won)
	_, _ = io.Copy(io.Discard, os.Stdin) // until killed or the parent goes away
}

func TestKillDashNine(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in a child")
	}
	path := dbPath(t)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestKillChild$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	must(t, err)
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	var done, busy, won string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "started %s %s %s", &done, &busy, &won); err == nil {
			break
		}
	}
	if busy == "" {
		_ = cmd.Wait()
		t.Fatalf("the child did not start its runs (%v)", sc.Err())
	}

	// While the child holds the file, Open fails fast with the default
	// lock timeout.
	if _, err := Open(path, Options{}); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "is in use by another bunker daemon") {
		t.Fatalf("Open while the child holds the DB = %v", err)
	}

	must(t, cmd.Process.Kill()) // SIGKILL: no deferred code, no Close
	_ = cmd.Wait()

	s := open(t, path, Options{})
	if r, err := s.Run(done); err != nil || r.Result != ResultSuccess || r.Finished.IsZero() {
		t.Fatalf("finished run after kill -9: %+v, %v", r, err)
	}
	if r, err := s.Run(busy); err != nil || r.Result != ResultRunning || r.Log != "dumping\n" {
		t.Fatalf("running run after kill -9: %+v, %v", r, err)
	}
	if won != "true" {
		t.Fatalf("child's ClaimSlot = %s", won)
	}
	if ok, err := s.ClaimSlot("pg", time.Unix(1e9, 0)); err != nil || ok {
		t.Fatalf("slot claimed by the killed daemon was claimed again: %v, %v", ok, err)
	}
	rec, err := s.Recover("daemon was killed")
	must(t, err)
	if len(rec) != 1 || rec[0].ID != busy || rec[0].Result != ResultInterrupted || rec[0].Reason != "daemon was killed" {
		t.Fatalf("Recover = %+v", rec)
	}
	if r, err := s.LastRun("pg", KindBackup); err != nil || r.ID != busy || r.Result != ResultInterrupted {
		t.Fatalf("LastRun after Recover = %+v, %v", r, err)
	}
}

func TestTimeKey(t *testing.T) {
	times := []time.Time{
		time.Date(-5000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1900, 1, 1, 0, 0, 0, 999999999, time.UTC),
		time.Unix(-1, 0),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i, tm := range times {
		k := timeKey(tm)
		back, err := decodeTimeKey(k)
		if err != nil || !back.Equal(tm) {
			t.Errorf("timeKey(%v) decodes to %v, %v", tm, back, err)
		}
		if i > 0 && string(timeKey(times[i-1])) >= string(k) {
			t.Errorf("timeKey(%v) does not sort after timeKey(%v)", tm, times[i-1])
		}
	}
}

// TestDamagedFile breaks the pages of a state file (not the meta pages
// bbolt checksums): bbolt panics on such files, the store must return
// errors, and a failed Open must not leave the file locked.
func TestDamagedFile(t *testing.T) {
	path := dbPath(t)
	s, err := Open(path, Options{Clock: newClock().Now})
	must(t, err)
	for i := range 100 {
		r := &Run{ID: fmt.Sprintf("run%03d", i), Job: fmt.Sprint("job", i%5), Kind: KindBackup, Log: strings.Repeat("x", 3000)}
		must(t, s.StartRun(r))
		r.Result = ResultSuccess
		must(t, s.FinishRun(r))
	}
	must(t, s.Close())
	good, err := os.ReadFile(path)
	must(t, err)
	const meta = 2 * 4096 // bbolt's two meta pages
	for _, tc := range []struct {
		name   string
		damage func(d []byte)
	}{
		{"zeroed", func(d []byte) { clear(d[meta:]) }},
		{"flipped", func(d []byte) {
			for i := meta; i < len(d); i += 7 {
				d[i] ^= 0x5a
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := append([]byte(nil), good...)
			tc.damage(d)
			must(t, os.WriteFile(path, d, 0o600))
			for attempt := range 2 {
				s, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
				if errors.Is(err, ErrInUse) {
					t.Fatalf("attempt %d: a failed Open left the file locked: %v", attempt, err)
				}
				if err != nil {
					if !strings.Contains(err.Error(), path) {
						t.Fatalf("Open error does not name the file: %v", err)
					}
					t.Log(err)
					continue
				}
				// Whatever bbolt makes of it, the calls return.
				_, err = s.Runs("", 0)
				t.Log(err)
				_, err = s.Recover("x")
				t.Log(err)
				t.Log(s.StartRun(&Run{Job: "job1"}))
				must(t, s.Close())
			}
		})
	}
}
