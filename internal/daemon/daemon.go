package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/monitor"
	"github.com/bunkerbackup/bunker/internal/notify"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/redact"
	"github.com/bunkerbackup/bunker/internal/state"
)

// Runner does the work: AppRunner implements it with the same code as
// bunker run, drill and status.
type Runner interface {
	RunJob(ctx context.Context, p *plan.Plan, j *plan.Job, log io.Writer) (JobOutcome, error)
	RunDrill(ctx context.Context, p *plan.Plan, d *plan.Drill, log io.Writer) (DrillOutcome, error)
	// Measure reads the repositories; known is each job's last backup
	// from the run history, for repositories that cannot be read.
	Measure(ctx context.Context, p *plan.Plan, now time.Time, known map[string]monitor.SnapshotRef) *monitor.Status
	// Snapshots lists a repository's snapshots, newest first.
	Snapshots(ctx context.Context, p *plan.Plan, repo string) ([]SnapshotInfo, error)
}

// SnapshotInfo is one snapshot in the API's listing.
type SnapshotInfo struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Host       string    `json:"host"`
	Paths      []string  `json:"paths"`
	Tags       []string  `json:"tags"`
	Kind       string    `json:"kind"`
	Source     string    `json:"source,omitempty"`
	TotalBytes int64     `json:"total_bytes"`
	BytesAdded int64     `json:"bytes_added"`
}

// JobOutcome is what a successful job run made.
type JobOutcome struct {
	Snapshot   string
	Repository string
	BytesRead  int64
	BytesAdded int64
	Copies     map[string]string
}

// DrillOutcome is what a drill measured.
type DrillOutcome struct {
	Snapshot       string
	RestoreSeconds float64
}

// Notifier sends alerts and healthcheck pings.
type Notifier interface {
	Notify(ctx context.Context, ev notify.Event) error
	Ping(ctx context.Context, job, stage, body string) error
}

// Options configure a daemon.
type Options struct {
	Plan   *plan.Plan
	Runner Runner
	Store  *state.Store
	// Notifier may be nil (no notifications).
	Notifier Notifier
	Clock    Clock // default RealClock
	Logger   *slog.Logger
	// MeasureEvery is how often the repositories are measured for RPO
	// and 3-2-1 (default 1m).
	MeasureEvery time.Duration
	// ShutdownGrace is how long running jobs may go on after a shutdown
	// request before they are cancelled (default 30s).
	ShutdownGrace time.Duration
	// Metrics, when set, is updated as runs finish and measurements come.
	Metrics *Metrics
	// Ready, when set, is called once Run has recovered the history and
	// accepts triggers.
	Ready func()
	// Secrets, when set, returns the secret values of plan p (repository
	// passwords, the API token, DSNs, cloud keys in the environment). The
	// daemon masks each in what it keeps or sends of a run — its log,
	// error and reason in the history and the API, notifications and
	// healthcheck pings — since hooks and tools may print them.
	Secrets func(ctx context.Context, p *plan.Plan) []string
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Plan == nil || o.Runner == nil || o.Store == nil {
		return errors.New("daemon: Plan, Runner and Store are required")
	}
	return nil
}

// Daemon runs a plan's schedules.
type Daemon struct {
	o     Options
	clock Clock
	log   *slog.Logger

	mu      sync.Mutex
	plan    *plan.Plan
	running map[string]context.CancelFunc // job/drill key → cancel
	repoSem map[string]chan struct{}
	status  *monitor.Status
	wg      sync.WaitGroup
	wake    chan struct{}
	jobsCtx context.Context
	// started is closed once Run has set jobsCtx: the API may serve
	// before that, and a run asked for in between waits for it.
	started chan struct{}
	// measureSoon asks the loop for a measurement before the next
	// regular one (a backup just changed the RPO picture).
	measureSoon bool
	// snaps caches the API's snapshot listings.
	snaps snapshotCache
	// repoTasksOnce warns once that the runner runs no repository
	// checks and prunes.
	repoTasksOnce sync.Once
}

// New returns a daemon; Run starts it.
func New(o Options) (*Daemon, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MeasureEvery <= 0 {
		o.MeasureEvery = time.Minute
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 30 * time.Second
	}
	return &Daemon{o: o, clock: o.Clock, log: o.Logger, plan: o.Plan, running: map[string]context.CancelFunc{},
		repoSem: map[string]chan struct{}{}, wake: make(chan struct{}, 1), started: make(chan struct{})}, nil
}

// Plan is the plan in force.
func (d *Daemon) Plan() *plan.Plan {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.plan
}

// SetPlan replaces the plan (a reload); running jobs finish under the
// old one.
func (d *Daemon) SetPlan(p *plan.Plan) {
	d.mu.Lock()
	d.plan = p
	d.mu.Unlock()
	d.kick()
}

// Status is the last measurement (nil before the first).
func (d *Daemon) Status() *monitor.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

// Store is the run history.
func (d *Daemon) Store() *state.Store { return d.o.Store }

func (d *Daemon) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// slotKey names a job's or drill's schedule in the store.
func jobKey(name string) string   { return "job:" + name }
func drillKey(name string) string { return "drill:" + name }

// Run schedules until ctx ends, then lets running jobs finish for the
// grace period and cancels the rest, recording why.
func (d *Daemon) Run(ctx context.Context) error {
	interrupted, err := d.o.Store.Recover("the daemon stopped while it ran (crash or kill)")
	if err != nil {
		return fmt.Errorf("recover run history: %w", err)
	}
	for _, r := range interrupted {
		d.log.Warn("run interrupted by the last shutdown", "run", r.ID, "job", r.Job, "started", r.Started)
	}
	jobsCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	d.mu.Lock()
	d.jobsCtx = jobsCtx
	d.mu.Unlock()
	close(d.started)
	if d.o.Ready != nil {
		d.o.Ready()
	}
	d.measure(ctx)
	nextMeasure := d.clock.Now().Add(d.o.MeasureEvery)
	for ctx.Err() == nil {
		now := d.clock.Now()
		next := d.schedule(jobsCtx, now)
		d.mu.Lock()
		soon := d.measureSoon
		d.measureSoon = false
		d.mu.Unlock()
		if soon || !now.Before(nextMeasure) {
			d.measure(ctx)
			nextMeasure = now.Add(d.o.MeasureEvery)
		}
		if nextMeasure.Before(next) {
			next = nextMeasure
		}
		sctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-d.wake:
				cancel()
			case <-sctx.Done():
			}
		}()
		d.clock.Sleep(sctx, next.Sub(now))
		cancel()
	}
	// Shutdown: let running jobs finish within the grace period.
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.o.ShutdownGrace):
		d.log.Warn("cancelling running jobs", "grace", d.o.ShutdownGrace)
		d.mu.Lock()
		for _, c := range d.running {
			c()
		}
		d.mu.Unlock()
		<-done
	}
	return nil
}

// schedule starts what is due at now and returns when to look again.
func (d *Daemon) schedule(ctx context.Context, now time.Time) time.Time {
	p := d.Plan()
	next := now.Add(time.Hour)
	for _, j := range p.Jobs {
		if n := d.due(ctx, jobKey(j.Name), j.ScheduleOf(), now, func(trigger string, slot time.Time) {
			d.startJob(ctx, p, j, trigger, slot)
		}); n.Before(next) {
			next = n
		}
	}
	for _, dr := range p.Drills {
		if dr.ScheduleOf() == nil {
			continue
		}
		if n := d.due(ctx, drillKey(dr.Name), dr.ScheduleOf(), now, func(trigger string, slot time.Time) {
			d.startDrill(ctx, p, dr, trigger, slot)
		}); n.Before(next) {
			next = n
		}
	}
	return d.scheduleRepos(ctx, p, now, next)
}

// due starts a run when a slot of s has come since the last one claimed,
// at most one (a catch-up when several were missed), and returns the
// next slot.
func (d *Daemon) due(ctx context.Context, key string, s plan.Schedule, now time.Time, start func(trigger string, slot time.Time)) time.Time {
	last, err := d.o.Store.LastSlot(key)
	if err != nil {
		d.log.Error("read schedule state", "key", key, "err", err)
		return now.Add(time.Minute)
	}
	if last.IsZero() {
		// First sight: the first run is the next slot, not a catch-up.
		if err := d.o.Store.SetLastSlot(key, now); err != nil {
			d.log.Error("write schedule state", "key", key, "err", err)
		}
		return s.Next(now)
	}
	slot := s.Next(last)
	if slot.After(now) {
		return slot
	}
	// The latest slot due (bounded: a minute-schedule after a year off).
	trigger := state.TriggerSchedule
	for i := 0; i < 100000; i++ {
		n := s.Next(slot)
		if n.After(now) {
			break
		}
		slot, trigger = n, state.TriggerCatchUp
	}
	if now.Sub(slot) > time.Minute {
		trigger = state.TriggerCatchUp
	}
	ok, err := d.o.Store.ClaimSlot(key, slot)
	if err != nil {
		d.log.Error("claim schedule slot", "key", key, "err", err)
		return now.Add(time.Minute)
	}
	if ok {
		start(trigger, slot)
	}
	return s.Next(slot)
}

// Trigger runs a job now (the API's run button).
func (d *Daemon) Trigger(job string) error {
	p := d.Plan()
	j := p.Job(job)
	if j == nil {
		return fmt.Errorf("no job %q", job)
	}
	ctx, err := d.runningContext()
	if err != nil {
		return err
	}
	if !d.startJob(ctx, p, j, state.TriggerAPI, time.Time{}) {
		return fmt.Errorf("job %s is running already", job)
	}
	return nil
}

// startWait is how long a run asked for while the daemon starts waits
// for its scheduler.
const startWait = 30 * time.Second

// runningContext is the context runs start under, once Run has begun
// (waiting up to startWait for it: the API serves from the start).
func (d *Daemon) runningContext() (context.Context, error) {
	select {
	case <-d.started:
	case <-time.After(startWait):
		return nil, errors.New("the daemon is not running")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.jobsCtx, nil
}

// acquire takes the repository's concurrency slot.
func (d *Daemon) acquire(ctx context.Context, repo string) (release func(), err error) {
	d.mu.Lock()
	sem, ok := d.repoSem[repo]
	if !ok {
		n := d.plan.Daemon.MaxPerRepository
		if n <= 0 {
			n = 1
		}
		sem = make(chan struct{}, n)
		d.repoSem[repo] = sem
	}
	d.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// begin registers a running job; false when one with the key runs.
func (d *Daemon) begin(ctx context.Context, key string) (context.Context, func(), bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.running[key]; ok {
		return nil, nil, false
	}
	rctx, cancel := context.WithCancelCause(ctx)
	d.running[key] = func() { cancel(errors.New("the daemon shut down")) }
	d.wg.Add(1)
	return rctx, func() {
		d.mu.Lock()
		delete(d.running, key)
		d.mu.Unlock()
		cancel(nil)
		d.wg.Done()
	}, true
}

// Running lists the keys of running jobs and drills.
func (d *Daemon) Running() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for k := range d.running {
		out = append(out, k)
	}
	return out
}

func (d *Daemon) startJob(ctx context.Context, p *plan.Plan, j *plan.Job, trigger string, slot time.Time) bool {
	rctx, end, ok := d.begin(ctx, jobKey(j.Name))
	if !ok {
		d.log.Warn("job still running: slot skipped", "job", j.Name, "slot", slot)
		return false
	}
	go func() {
		defer end()
		if j.Jitter > 0 && trigger == state.TriggerSchedule {
			if !d.clock.Sleep(rctx, rand.N(j.Jitter)) {
				return
			}
		}
		d.runJob(rctx, p, j, trigger, slot)
	}()
	return true
}

func (d *Daemon) runJob(ctx context.Context, p *plan.Plan, j *plan.Job, trigger string, slot time.Time) {
	r := &state.Run{Job: j.Name, Kind: state.KindBackup, Trigger: trigger, Scheduled: slot, Started: d.clock.Now(), Repository: j.Repository}
	if err := d.o.Store.StartRun(r); err != nil {
		d.log.Error("record run start", "job", j.Name, "err", err)
		return
	}
	log := d.log.With("job", j.Name, "run", r.ID)
	log.Info("job started", "trigger", trigger)
	d.ping(ctx, j.Name, "start", "")
	release, err := d.acquire(ctx, j.Repository)
	var out JobOutcome
	var buf bytes.Buffer
	if err == nil {
		out, err = d.o.Runner.RunJob(ctx, p, j, &buf)
		release()
	}
	r.Finished, r.Log = d.clock.Now(), buf.String()
	r.Snapshot, r.BytesRead, r.BytesAdded = out.Snapshot, out.BytesRead, out.BytesAdded
	d.finishRecord(ctx, p, r, err)
	if ferr := d.o.Store.FinishRun(r); ferr != nil {
		log.Error("record run end", "err", ferr)
	}
	if m := d.o.Metrics; m != nil {
		m.jobRun(r)
	}
	actx := context.WithoutCancel(ctx)
	if err != nil {
		log.Error("job failed", "err", r.Error)
		d.ping(actx, j.Name, "fail", r.Error)
		d.alert(actx, "job:"+j.Name, true, notify.Event{Kind: "failure", Severity: "critical", Job: j.Name, RunID: r.ID,
			Title: fmt.Sprintf("job %s failed", j.Name), Message: r.Error})
		return
	}
	log.Info("job finished", "snapshot", out.Snapshot)
	d.ping(actx, j.Name, "success", "")
	d.alert(actx, "job:"+j.Name, false, notify.Event{Kind: "recovery", Severity: "info", Job: j.Name, RunID: r.ID,
		Title: fmt.Sprintf("job %s succeeds again", j.Name)})
	// A new backup changes the RPO state: measure soon.
	d.kickMeasure()
}

// redactRun masks the plan's secrets in a finished run's log, error and
// reason: what the history keeps, the API shows and notifications send.
func (d *Daemon) redactRun(ctx context.Context, p *plan.Plan, r *state.Run) {
	if d.o.Secrets == nil {
		return
	}
	red := redact.New(d.o.Secrets(context.WithoutCancel(ctx), p)...)
	r.Log, r.Error, r.Reason = red.String(r.Log), red.String(r.Error), red.String(r.Reason)
}

func (d *Daemon) kickMeasure() {
	d.mu.Lock()
	d.measureSoon = true
	d.mu.Unlock()
	d.kick()
}

func (d *Daemon) startDrill(ctx context.Context, p *plan.Plan, dr *plan.Drill, trigger string, slot time.Time) bool {
	rctx, end, ok := d.begin(ctx, drillKey(dr.Name))
	if !ok {
		return false
	}
	go func() {
		defer end()
		// A drill checks the newest backup: when its job is running
		// (often both are due at the same slot), wait for that backup.
		for d.isRunning(jobKey(dr.Job)) {
			select {
			case <-time.After(100 * time.Millisecond):
			case <-rctx.Done():
				return
			}
		}
		d.runDrill(rctx, p, dr, trigger, slot)
	}()
	return true
}

func (d *Daemon) isRunning(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.running[key]
	return ok
}

// RecordRun adds a finished run made outside the daemon (a manual
// bunker run or drill) to the history: it must name a job (backup), a
// drill (drill) or a repository (check, prune) of the plan, and is
// recorded as triggered by hand.
func (d *Daemon) RecordRun(r *state.Run) error {
	p := d.Plan()
	switch r.Kind {
	case state.KindBackup:
		if p.Job(r.Job) == nil {
			return fmt.Errorf("record run: no job %q", r.Job)
		}
	case state.KindDrill:
		// A job without drills is checked by hand as drill JOB-check.
		job, isCheck := strings.CutSuffix(r.Job, "-check")
		if !slices.ContainsFunc(p.Drills, func(dr *plan.Drill) bool { return dr.Name == r.Job }) && (!isCheck || p.Job(job) == nil) {
			return fmt.Errorf("record run: no drill %q", r.Job)
		}
	case state.KindCheck, state.KindPrune:
		if p.Repository(r.Job) == nil {
			return fmt.Errorf("record run: no repository %q", r.Job)
		}
		r.Repository = r.Job
	default:
		return fmt.Errorf("record run: kind %q: want %s, %s, %s or %s", r.Kind, state.KindBackup, state.KindDrill, state.KindCheck, state.KindPrune)
	}
	r.ID, r.Trigger, r.Scheduled = "", state.TriggerManual, time.Time{}
	if err := d.o.Store.Record(r); err != nil {
		return err
	}
	d.log.Info("manual run recorded", "kind", r.Kind, "name", r.Job, "result", r.Result)
	return nil
}

// TriggerDrill runs a drill now.
func (d *Daemon) TriggerDrill(name string) error {
	p := d.Plan()
	for _, dr := range p.Drills {
		if dr.Name == name {
			ctx, err := d.runningContext()
			if err != nil {
				return err
			}
			if !d.startDrill(ctx, p, dr, state.TriggerAPI, time.Time{}) {
				return fmt.Errorf("drill %s is running already", name)
			}
			return nil
		}
	}
	return fmt.Errorf("no drill %q", name)
}

func (d *Daemon) runDrill(ctx context.Context, p *plan.Plan, dr *plan.Drill, trigger string, slot time.Time) {
	r := &state.Run{Job: dr.Name, Kind: state.KindDrill, Trigger: trigger, Scheduled: slot, Started: d.clock.Now()}
	if j := p.Job(dr.Job); j != nil {
		r.Repository = j.Repository
	}
	if err := d.o.Store.StartRun(r); err != nil {
		d.log.Error("record drill start", "drill", dr.Name, "err", err)
		return
	}
	var buf bytes.Buffer
	out, err := d.o.Runner.RunDrill(ctx, p, dr, &buf)
	r.Finished, r.Log, r.Snapshot, r.RestoreSeconds = d.clock.Now(), buf.String(), out.Snapshot, out.RestoreSeconds
	d.finishRecord(ctx, p, r, err)
	if ferr := d.o.Store.FinishRun(r); ferr != nil {
		d.log.Error("record drill end", "drill", dr.Name, "err", ferr)
	}
	if m := d.o.Metrics; m != nil {
		m.drillRun(r, p)
	}
	actx := context.WithoutCancel(ctx)
	if err != nil {
		d.log.Error("drill failed", "drill", dr.Name, "err", r.Error)
		d.alert(actx, "drill:"+dr.Name, true, notify.Event{Kind: "drill", Severity: "critical", Job: dr.Name, RunID: r.ID,
			Title: fmt.Sprintf("restore drill %s failed: the backup of %s did not restore", dr.Name, dr.Job), Message: r.Error})
		return
	}
	d.alert(actx, "drill:"+dr.Name, false, notify.Event{Kind: "recovery", Severity: "info", Job: dr.Name, RunID: r.ID,
		Title: fmt.Sprintf("restore drill %s passes again", dr.Name)})
	if j := p.Job(dr.Job); j != nil && j.RTO > 0 {
		over := out.RestoreSeconds > j.RTO.Seconds()
		d.alert(actx, "rto:"+dr.Name, over, notify.Event{Kind: "rto", Severity: "warning", Job: dr.Job, RunID: r.ID,
			Title:  fmt.Sprintf("restore of %s took %.0fs, over its RTO of %s", dr.Job, out.RestoreSeconds, monitor.FormatAge(j.RTO)),
			Fields: map[string]string{"drill": dr.Name}})
	}
}

// measure judges RPO and 3-2-1 now, updates the metrics and alerts on
// changes.
func (d *Daemon) measure(ctx context.Context) {
	p := d.Plan()
	now := d.clock.Now()
	known := map[string]monitor.SnapshotRef{}
	for _, j := range p.Jobs {
		if r, err := d.o.Store.LastSuccess(j.Name, state.KindBackup); err == nil && r != nil {
			known[j.Name] = monitor.SnapshotRef{ID: r.Snapshot, Time: r.Started}
		}
	}
	st := d.o.Runner.Measure(ctx, p, now, known)
	if st == nil {
		return
	}
	monitor.JudgeDrills(st, p, LastDrillRuns(d.o.Store, p), true)
	d.mu.Lock()
	d.status = st
	d.mu.Unlock()
	for _, r := range st.Repositories {
		if r.Reachable && r.SizeBytes > 0 {
			if err := d.o.Store.RecordSize(r.Name, now, r.SizeBytes); err != nil {
				d.log.Error("record repository size", "repository", r.Name, "err", err)
			}
		}
	}
	if m := d.o.Metrics; m != nil {
		m.status(st)
	}
	for _, j := range st.Jobs {
		ev := notify.Event{Kind: "rpo", Severity: "critical", Job: j.Name,
			Title:  fmt.Sprintf("RPO violated for %s", j.Name),
			Fields: map[string]string{"rpo": monitor.FormatAge(time.Duration(j.RPOSeconds * float64(time.Second)))}}
		if j.LastSuccess != nil {
			ev.Title += fmt.Sprintf(" (last backup %s ago)", monitor.FormatAge(now.Sub(*j.LastSuccess)))
		} else {
			ev.Title += " (no backup yet)"
		}
		if j.Note != "" {
			ev.Message = j.Note
		}
		violated := j.RPOState == monitor.RPOViolated
		if !violated {
			ev = notify.Event{Kind: "recovery", Severity: "info", Job: j.Name, Title: fmt.Sprintf("RPO of %s is met again", j.Name)}
		}
		d.alert(ctx, "rpo:"+j.Name, violated, ev)
	}
	for _, ds := range st.Datasets {
		ev := notify.Event{Kind: "321", Severity: "warning", Job: ds.Job, Title: fmt.Sprintf("dataset %s breaks the copy rule", ds.Job)}
		for _, m := range ds.Missing {
			ev.Message += "missing " + m + "\n"
		}
		if ds.OK {
			ev = notify.Event{Kind: "recovery", Severity: "info", Job: ds.Job, Title: fmt.Sprintf("dataset %s meets the copy rule again", ds.Job)}
		}
		d.alert(ctx, "321:"+ds.Job, !ds.OK, ev)
	}
}

// LastDrillRuns reads each drill's last finished run from the history.
func LastDrillRuns(store *state.Store, p *plan.Plan) map[string]monitor.DrillRun {
	out := map[string]monitor.DrillRun{}
	for _, dr := range p.Drills {
		runs, err := store.Runs(dr.Name, 10)
		if err != nil {
			continue
		}
		for _, r := range runs {
			if r.Kind == state.KindDrill && r.Result != state.ResultRunning {
				out[dr.Name] = monitor.DrillRun{Result: r.Result, Time: r.Started, RestoreSeconds: r.RestoreSeconds, Error: r.Error}
				break
			}
		}
	}
	return out
}

// alert records an alert's state and notifies when it changes: once when
// it starts, once when it clears (recovery), never in between.
func (d *Daemon) alert(ctx context.Context, key string, active bool, ev notify.Event) {
	changed, err := d.o.Store.SetAlert(key, active, d.clock.Now())
	if err != nil {
		d.log.Error("record alert", "key", key, "err", err)
		return
	}
	if !changed || d.o.Notifier == nil {
		return
	}
	ev.Time = d.clock.Now()
	if err := d.o.Notifier.Notify(ctx, ev); err != nil {
		d.log.Error("notify", "key", key, "err", err)
	}
}

func (d *Daemon) ping(ctx context.Context, job, stage, body string) {
	if d.o.Notifier == nil {
		return
	}
	if err := d.o.Notifier.Ping(ctx, job, stage, body); err != nil {
		d.log.Warn("healthcheck ping", "job", job, "stage", stage, "err", err)
	}
}

// finishRecord sets a finished run's result from its error (cancelled
// when ctx ended, with the cause) and masks the plan's secrets in it.
func (d *Daemon) finishRecord(ctx context.Context, p *plan.Plan, r *state.Run, err error) {
	switch {
	case err == nil:
		r.Result = state.ResultSuccess
	case ctx.Err() != nil:
		r.Result, r.Error, r.Reason = state.ResultCancelled, err.Error(), context.Cause(ctx).Error()
	default:
		r.Result, r.Error = state.ResultFailed, err.Error()
	}
	d.redactRun(ctx, p, r)
}
