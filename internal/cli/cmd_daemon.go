package cli

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/daemon"
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

// daemonFlags are the flags of bunker daemon.
type daemonFlags struct {
	planFile, listen, stateDir string
	allowedHosts               []string
	openAPI                    bool
	measureEvery, grace        time.Duration
}

func (d *daemonFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&d.planFile, "plan", "", "the plan `file` (default $BUNKER_PLAN, else plan.yaml in $XDG_CONFIG_HOME/bunker or /etc/bunker)")
	f.StringVar(&d.listen, "listen", "", "HTTP `address` (default: the plan's daemon.listen; none: no HTTP)")
	f.StringArrayVar(&d.allowedHosts, "allowed-host", nil, "a host `name` (or name:port) the HTTP server answers to besides IP addresses and localhost, added to daemon.allowed_hosts (repeatable)")
	f.BoolVar(&d.openAPI, "insecure-open-api", false, "serve the status, run logs and metrics without a token on a non-loopback --listen address (refused otherwise when the plan sets no daemon.api_read_token or api_token)")
	f.StringVar(&d.stateDir, "state-dir", "", "`directory` of the run history (default: the plan's daemon.state_dir, else ~/.local/state/bunker)")
	f.DurationVar(&d.measureEvery, "measure-every", time.Minute, "read the repositories and judge RPO and 3-2-1 this often")
	flagRange(f, 1, unbounded, "measure-every")
	f.DurationVar(&d.grace, "shutdown-grace", 30*time.Second, "on shutdown, let running jobs finish for this long before cancelling them")
}

func (a *App) daemonCommand() *cobra.Command {
	var f daemonFlags
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
		RunE: func(cmd *cobra.Command, args []string) error { return a.runDaemon(cmd.Context(), &f) },
	}
	f.add(cmd)
	return cmd
}

// runDaemon runs the daemon (daemon.Serve) of the plan of f.
func (a *App) runDaemon(ctx context.Context, f *daemonFlags) error {
	planFile := f.planFile
	if planFile == "" {
		planFile = a.Getenv("BUNKER_PLAN")
	}
	p, err := a.loadPlan(planFile)
	if err != nil {
		return err
	}
	o := daemon.ServeOptions{Plan: p, Load: func() (*plan.Plan, error) { return a.loadPlan(p.File) },
		StateDir: daemon.StateDir(p, f.stateDir, a.Getenv), Listen: f.listen, AllowedHosts: f.allowedHosts, OpenAPI: f.openAPI,
		MeasureEvery: f.measureEvery, ShutdownGrace: f.grace, Runner: a.appRunner(), Logger: a.slogger(slog.LevelInfo),
		Getenv: a.Getenv, Secret: a.planSecret, Secrets: a.planSecrets, Version: Version, Dashboard: a.dashboardHandler}
	if h := a.Daemon; h != nil {
		o.Clock, o.Started, o.Reload = h.Clock, h.Started, h.Reload
	}
	return daemon.Serve(ctx, o)
}

// slogger is a logger on stderr: text, or with --json JSON lines of
// message_type "log" (docs/JSON.md).
func (a *App) slogger(level slog.Level) *slog.Logger {
	o := &slog.HandlerOptions{Level: level}
	if a.g.json {
		return slog.New(slog.NewJSONHandler(a.Stderr, o).WithAttrs([]slog.Attr{slog.String("message_type", "log")}))
	}
	return slog.New(slog.NewTextHandler(a.Stderr, o))
}

// appRunner does the daemon's work with the use cases' App of the global
// flags, and plan jobs with the commands' defaults (run_sources.go).
func (a *App) appRunner() *daemon.AppRunner {
	return &daemon.AppRunner{Core: a.core, Job: a.runJob, Secret: a.planSecret}
}

// runDrill runs a drill (app.Drill) for bunker drill.
func (a *App) runDrill(ctx context.Context, p *plan.Plan, d *plan.Drill, log io.Writer) (daemon.DrillOutcome, error) {
	return a.appRunner().Drill(ctx, p, d, log)
}

// planSecrets are the secret values a run of p may handle (app.PlanSecrets).
func (a *App) planSecrets(ctx context.Context, p *plan.Plan) []string {
	return (&app.App{Getenv: a.Getenv}).PlanSecrets(ctx, p)
}

// newRunLog returns the log of a manual run, with the plan's secrets
// masked: show, when not nil, also sees it.
func (a *App) newRunLog(ctx context.Context, p *plan.Plan, show io.Writer) *daemon.RunLog {
	return daemon.NewRunLog(show, a.planSecrets(ctx, p))
}

// recordRun adds the finished manual run r to the plan's history, and
// warns (never fails the command) when it cannot.
func (a *App) recordRun(ctx context.Context, p *plan.Plan, r *state.Run) {
	if err := (daemon.HistoryClient{Getenv: a.Getenv, Secret: a.planSecret}).Record(ctx, p, r); err != nil {
		a.out.warnf("run history: the %s %s was not recorded: %v", r.Kind, r.Job, err)
	}
}
