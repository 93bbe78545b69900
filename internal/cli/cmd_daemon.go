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
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return a.runDaemon(cmd.Context(), &f) },
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
