package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/daemon"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/monitor"
	"github.com/bunkerbackup/bunker/internal/notify"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/state"
	"github.com/spf13/cobra"
)

// DaemonHooks let in-process tests drive bunker daemon: a fake clock, and
// a way to learn the listening address and the daemon itself.
type DaemonHooks struct {
	Clock   daemon.Clock
	Started func(d *daemon.Daemon, addr string)
	// Reload, when set, receives a function that reloads the plan (what
	// SIGHUP does).
	Reload func(reload func() error)
}

func (a *App) daemonCommand() *cobra.Command {
	var planFile, listen, stateDir string
	var allowedHosts []string
	var openAPI bool
	var measureEvery, grace time.Duration
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run a plan's schedules: backups, copies, retention, drills, RPO watch, metrics",
		Long: `Run every job and drill of a plan on its schedule until interrupted.

- Missed runs after downtime are caught up once; a job never runs twice at
  once; runs per repository are bounded (daemon.max_per_repository).
- Every --measure-every the repositories are read and RPO and 3-2-1 judged;
  a violation, a failed job or a failed drill is notified once, and its
  recovery once (plan notify section).
- Run history, drill results and alerts live in a database in the state
  directory and survive restarts; runs cut off by a crash are recorded as
  interrupted, never run twice for the same slot.
- HTTP on daemon.listen (or --listen): /metrics (Prometheus), /healthz,
  the JSON API under /api/v1/ and the dashboard. With daemon.api_read_token
  or daemon.api_token in the plan, every GET but /healthz and the
  dashboard's page needs one of them (Authorization: Bearer), else 401;
  runs (POST) need daemon.api_token. Without a token the daemon's own state
  is served to anyone who reaches the address, so a non-loopback address
  is refused unless --insecure-open-api says a firewall guards it;
  snapshot listings (which open repositories) then answer 403. Requests
  are answered only when their Host header is an IP address, localhost,
  the --listen host or a name in daemon.allowed_hosts or --allowed-host;
  others get 421 (a defence against DNS rebinding by web pages).
- SIGHUP reloads the plan; an invalid plan is refused and the old one kept.
  SIGTERM stops scheduling, lets running jobs finish for --shutdown-grace,
  then cancels them (recorded as cancelled with the reason).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDaemon(cmd.Context(), planFile, listen, stateDir, allowedHosts, openAPI, measureEvery, grace)
		},
	}
	f := cmd.Flags()
	f.StringVar(&planFile, "plan", "", "the plan `file` (default $BUNKER_PLAN, else plan.yaml in $XDG_CONFIG_HOME/bunker or /etc/bunker)")
	f.StringVar(&listen, "listen", "", "HTTP `address` (default: the plan's daemon.listen; none: no HTTP)")
	f.StringArrayVar(&allowedHosts, "allowed-host", nil, "a host `name` (or name:port) the HTTP server answers to besides IP addresses and localhost, added to daemon.allowed_hosts (repeatable)")
	f.BoolVar(&openAPI, "insecure-open-api", false, "serve the status, run logs and metrics without a token on a non-loopback --listen address (refused otherwise when the plan sets no daemon.api_read_token or api_token)")
	f.StringVar(&stateDir, "state-dir", "", "`directory` of the run history (default: the plan's daemon.state_dir, else ~/.local/state/bunker)")
	f.DurationVar(&measureEvery, "measure-every", time.Minute, "read the repositories and judge RPO and 3-2-1 this often")
	flagRange(f, 1, unbounded, "measure-every")
	f.DurationVar(&grace, "shutdown-grace", 30*time.Second, "on shutdown, let running jobs finish for this long before cancelling them")
	return cmd
}

func (a *App) stateDir(p *plan.Plan, flag string) string {
	switch {
	case flag != "":
		return flag
	case p.Daemon.StateDir != "":
		return p.Daemon.StateDir
	case a.Getenv("XDG_STATE_HOME") != "":
		return filepath.Join(a.Getenv("XDG_STATE_HOME"), "bunker")
	}
	home := a.Getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".local", "state", "bunker")
}

func (a *App) runDaemon(ctx context.Context, planFile, listen, stateDir string, allowedHosts []string, openAPI bool, measureEvery, grace time.Duration) error {
	if planFile == "" {
		planFile = a.Getenv("BUNKER_PLAN")
	}
	p, err := a.loadPlan(planFile)
	if err != nil {
		return err
	}
	planFile = p.File
	dir := a.stateDir(p, stateDir)
	clock := daemon.Clock(daemon.RealClock{})
	if a.Daemon != nil && a.Daemon.Clock != nil {
		clock = a.Daemon.Clock
	}
	store, err := state.Open(filepath.Join(dir, "state.db"), state.Options{Clock: clock.Now})
	if err != nil {
		return err
	}
	defer store.Close()
	logger := slog.New(slog.NewJSONHandler(a.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if !a.g.json {
		logger = slog.New(slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	newNotifier := func(p *plan.Plan) *notify.Notifier {
		host, _ := os.Hostname()
		return notify.New(p.Notify, notify.Options{Getenv: a.Getenv, Logger: logger, Hostname: host,
			RunSecretCommand: func(ctx context.Context, c string) (string, error) { return a.planSecret(ctx, "command:"+c) }})
	}
	metrics := daemon.NewMetrics(Version)
	notifier := &swappableNotifier{n: newNotifier(p)}
	var d *daemon.Daemon
	var addr string
	d, err = daemon.New(daemon.Options{Plan: p, Runner: &appRunner{a: a}, Store: store, Notifier: notifier, Clock: clock,
		Logger: logger, MeasureEvery: measureEvery, ShutdownGrace: grace, Metrics: metrics, Secrets: a.planSecrets,
		Ready: func() {
			if a.Daemon != nil && a.Daemon.Started != nil {
				a.Daemon.Started(d, addr)
			}
		}})
	if err != nil {
		return err
	}
	reload := func() error {
		np, err := a.loadPlan(planFile)
		if err != nil {
			logger.Error("plan reload refused: keeping the running plan", "err", err)
			return err
		}
		notifier.set(newNotifier(np))
		d.SetPlan(np)
		logger.Info("plan reloaded", "jobs", len(np.Jobs), "drills", len(np.Drills))
		return nil
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			_ = reload()
		}
	}()
	if a.Daemon != nil && a.Daemon.Reload != nil {
		a.Daemon.Reload(reload)
	}

	if listen == "" {
		listen = p.Daemon.Listen
	}
	if listen != "" {
		stop, err := a.serveDaemonAPI(ctx, p, d, listen, allowedHosts, openAPI, logger, &addr)
		if err != nil {
			return err
		}
		defer stop()
	}
	logger.Info("daemon started", "plan", planFile, "state", dir, "jobs", len(p.Jobs), "drills", len(p.Drills))
	err = d.Run(ctx)
	logger.Info("daemon stopped")
	return err
}

// serveDaemonAPI serves the daemon's API and dashboard on listen (its
// address goes to *addr) until the returned stop. Without a token it
// serves only on a loopback address, unless openAPI.
func (a *App) serveDaemonAPI(ctx context.Context, p *plan.Plan, d *daemon.Daemon, listen string, allowedHosts []string, openAPI bool, logger *slog.Logger, addr *string) (stop func(), err error) {
	token, readToken := "", ""
	if p.Daemon.APIToken != "" {
		if token, err = a.planSecret(ctx, p.Daemon.APIToken); err != nil {
			return nil, fmt.Errorf("daemon.api_token: %w", err)
		}
	}
	if p.Daemon.APIReadToken != "" {
		if readToken, err = a.planSecret(ctx, p.Daemon.APIReadToken); err != nil {
			return nil, fmt.Errorf("daemon.api_read_token: %w", err)
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", listen, err)
	}
	*addr = ln.Addr().String()
	// A name in --listen is a name the daemon answers to.
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		allowedHosts = append(allowedHosts, h)
	}
	if token == "" && readToken == "" && !isLoopback(ln.Addr()) {
		if !openAPI {
			ln.Close()
			return nil, fmt.Errorf("listen %s: refusing to serve the API on a non-loopback address without a token: "+
				"anyone who can reach %s would read the status, the run logs and the metrics. Set daemon.api_read_token "+
				"(and daemon.api_token for runs) in the plan, listen on 127.0.0.1, or pass --insecure-open-api when "+
				"a firewall or NetworkPolicy already keeps others out (docs/DAEMON.md)", listen, *addr)
		}
		logger.Warn("INSECURE: serving the status, run logs and metrics without a token on a non-loopback address "+
			"(--insecure-open-api): anyone who can reach it reads them; set daemon.api_read_token", "addr", *addr)
	}
	srv := daemon.NewServer(d.Handler(daemon.HandlerOptions{Token: token, ReadToken: readToken, Extra: a.dashboardHandler(d), AllowedHosts: allowedHosts}), logger)
	go func() { _ = srv.Serve(daemon.LimitListener(ln, daemon.MaxConnections)) }()
	logger.Info("serving", "addr", *addr)
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}, nil
}

// isLoopback reports whether addr, a listener's address, accepts only
// connections from this machine: 127.0.0.0/8 or ::1, not the unspecified
// address of ":9876".
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// swappableNotifier lets a reload replace the notifier.
type swappableNotifier struct {
	mu sync.Mutex
	n  *notify.Notifier
}

func (s *swappableNotifier) get() *notify.Notifier {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *swappableNotifier) set(n *notify.Notifier) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n = n
}

func (s *swappableNotifier) Notify(ctx context.Context, ev notify.Event) error {
	return s.get().Notify(ctx, ev)
}

func (s *swappableNotifier) Ping(ctx context.Context, job, stage, body string) error {
	return s.get().Ping(ctx, job, stage, body)
}

// appRunner does the daemon's work with the CLI's code.
type appRunner struct{ a *App }

func (r *appRunner) RunJob(ctx context.Context, p *plan.Plan, j *plan.Job, log io.Writer) (daemon.JobOutcome, error) {
	res, err := r.a.runJob(ctx, p, j, log)
	if res == nil {
		return daemon.JobOutcome{}, err
	}
	return daemon.JobOutcome{Snapshot: res.Snapshot, Repository: res.Repository, BytesRead: res.BytesRead, BytesAdded: res.BytesAdded, Copies: res.Copies}, err
}

func (r *appRunner) RunDrill(ctx context.Context, p *plan.Plan, d *plan.Drill, log io.Writer) (daemon.DrillOutcome, error) {
	ctx, done := withCloserScope(ctx)
	defer done()
	return r.a.runDrill(ctx, p, d, log)
}

func (r *appRunner) Measure(ctx context.Context, p *plan.Plan, now time.Time, known map[string]monitor.SnapshotRef) *monitor.Status {
	ctx, done := withCloserScope(ctx)
	defer done()
	res, err := r.a.measure(ctx, app.MeasureRequest{Plan: p, Now: now, Known: known, Secret: r.a.planSecret})
	if err != nil {
		return nil
	}
	return res.Status
}

func (r *appRunner) Snapshots(ctx context.Context, p *plan.Plan, name string) ([]daemon.SnapshotInfo, error) {
	ctx, done := withCloserScope(ctx)
	defer done()
	repo := p.Repository(name)
	pw, err := r.a.planSecret(ctx, repo.Password)
	if err != nil {
		return nil, fmt.Errorf("repository %s password: %w", name, err)
	}
	rp, err := r.a.openRepoAt(ctx, repo.Location, pw)
	if err != nil {
		return nil, err
	}
	all, _, err := snapshot.LoadAll(ctx, rp)
	if err != nil {
		return nil, err
	}
	out := make([]daemon.SnapshotInfo, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		sn := all[i]
		si := daemon.SnapshotInfo{ID: sn.ID.String(), Time: sn.Time, Host: sn.Hostname, Paths: sn.Paths, Tags: sn.Tags, Kind: sn.Kind, Source: sn.Metadata["source"]}
		if si.Tags == nil {
			si.Tags = []string{}
		}
		if sn.Summary != nil {
			si.TotalBytes, si.BytesAdded = sn.Summary.TotalBytes, sn.Summary.BytesAdded
		}
		out = append(out, si)
	}
	return out, nil
}

// runDrill runs a drill (app.Drill) for the daemon and bunker drill.
func (a *App) runDrill(ctx context.Context, p *plan.Plan, d *plan.Drill, log io.Writer) (daemon.DrillOutcome, error) {
	c, err := a.core()
	if err != nil {
		return daemon.DrillOutcome{}, err
	}
	defer func() { _ = c.Close() }()
	res, err := c.Drill(ctx, app.DrillRequest{Plan: p, Drill: d, Log: log})
	return daemon.DrillOutcome{Snapshot: res.Snapshot, RestoreSeconds: res.RestoreSeconds}, err
}
