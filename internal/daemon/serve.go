package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/bunkerbackup/bunker/internal/notify"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/state"
)

// ServeOptions are what Serve needs: the plan and how to load it again,
// the state directory, the HTTP listener, and the use cases.
type ServeOptions struct {
	Plan *plan.Plan
	// Load reads the plan file again (SIGHUP, Reload).
	Load func() (*plan.Plan, error)
	// StateDir holds the state database.
	StateDir string
	// Listen is the HTTP address ("": no HTTP); AllowedHosts are the
	// host names it answers to besides addresses and localhost; OpenAPI
	// serves a non-loopback address without a token.
	Listen        string
	AllowedHosts  []string
	OpenAPI       bool
	MeasureEvery  time.Duration
	ShutdownGrace time.Duration
	Runner        Runner
	Clock         Clock
	Logger        *slog.Logger
	// Getenv is the process environment, for the notifiers.
	Getenv func(string) string
	// Secret resolves the plan's secret references; Secrets lists the
	// secret values of a plan (Options.Secrets).
	Secret  func(ctx context.Context, ref string) (string, error)
	Secrets func(ctx context.Context, p *plan.Plan) []string
	// Version is the program's, for the metrics.
	Version string
	// Dashboard, when set, is the handler of what the API does not serve.
	Dashboard func(d *Daemon) http.Handler
	// Started, when set, is called with the daemon and its HTTP address
	// once it accepts triggers.
	Started func(d *Daemon, addr string)
	// Reload, when set, receives a function that reloads the plan (what
	// SIGHUP does).
	Reload func(reload func() error)
}

// Serve runs the daemon of o.Plan with its state database, notifiers and
// HTTP API until ctx ends; SIGHUP reloads the plan.
func Serve(ctx context.Context, o ServeOptions) error {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	store, err := state.Open(filepath.Join(o.StateDir, "state.db"), state.Options{Clock: o.Clock.Now})
	if err != nil {
		return err
	}
	defer store.Close()
	p, logger := o.Plan, o.Logger
	notifier := &swappableNotifier{n: o.notifier(p)}
	var d *Daemon
	var addr string
	d, err = New(Options{Plan: p, Runner: o.Runner, Store: store, Notifier: notifier, Clock: o.Clock,
		Logger: logger, MeasureEvery: o.MeasureEvery, ShutdownGrace: o.ShutdownGrace, Metrics: NewMetrics(o.Version),
		Secrets: o.Secrets, Ready: func() {
			if o.Started != nil {
				o.Started(d, addr)
			}
		}})
	if err != nil {
		return err
	}
	reload := func() error {
		np, err := o.Load()
		if err != nil {
			logger.Error("plan reload refused: keeping the running plan", "err", err)
			return err
		}
		notifier.set(o.notifier(np))
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
	if o.Reload != nil {
		o.Reload(reload)
	}
	if o.Listen == "" {
		o.Listen = p.Daemon.Listen
	}
	if o.Listen != "" {
		stop, err := o.serveAPI(ctx, d, &addr)
		if err != nil {
			return err
		}
		defer stop()
	}
	logger.Info("daemon started", "plan", p.File, "state", o.StateDir, "jobs", len(p.Jobs), "drills", len(p.Drills))
	err = d.Run(ctx)
	logger.Info("daemon stopped")
	return err
}

// notifier is the notifier of p's notify section.
func (o *ServeOptions) notifier(p *plan.Plan) *notify.Notifier {
	host, _ := os.Hostname()
	return notify.New(p.Notify, notify.Options{Getenv: o.Getenv, Logger: o.Logger, Hostname: host,
		RunSecretCommand: func(ctx context.Context, c string) (string, error) { return o.Secret(ctx, "command:"+c) }})
}

// serveAPI serves the daemon's API and dashboard on o.Listen (its
// address goes to *addr) until the returned stop. Without a token it
// serves only on a loopback address, unless o.OpenAPI.
func (o *ServeOptions) serveAPI(ctx context.Context, d *Daemon, addr *string) (stop func(), err error) {
	p, listen, logger := o.Plan, o.Listen, o.Logger
	token, readToken := "", ""
	if p.Daemon.APIToken != "" {
		if token, err = o.Secret(ctx, p.Daemon.APIToken); err != nil {
			return nil, fmt.Errorf("daemon.api_token: %w", err)
		}
	}
	if p.Daemon.APIReadToken != "" {
		if readToken, err = o.Secret(ctx, p.Daemon.APIReadToken); err != nil {
			return nil, fmt.Errorf("daemon.api_read_token: %w", err)
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", listen, err)
	}
	*addr = ln.Addr().String()
	// A name in --listen is a name the daemon answers to.
	allowedHosts := o.AllowedHosts
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		allowedHosts = append(allowedHosts, h)
	}
	if token == "" && readToken == "" && !isLoopback(ln.Addr()) {
		if !o.OpenAPI {
			ln.Close()
			return nil, fmt.Errorf("listen %s: refusing to serve the API on a non-loopback address without a token: "+
				"anyone who can reach %s would read the status, the run logs and the metrics. Set daemon.api_read_token "+
				"(and daemon.api_token for runs) in the plan, listen on 127.0.0.1, or pass --insecure-open-api when "+
				"a firewall or NetworkPolicy already keeps others out (docs/DAEMON.md)", listen, *addr)
		}
		logger.Warn("INSECURE: serving the status, run logs and metrics without a token on a non-loopback address "+
			"(--insecure-open-api): anyone who can reach it reads them; set daemon.api_read_token", "addr", *addr)
	}
	var extra http.Handler
	if o.Dashboard != nil {
		extra = o.Dashboard(d)
	}
	srv := NewServer(d.Handler(HandlerOptions{Token: token, ReadToken: readToken, Extra: extra, AllowedHosts: allowedHosts}), logger)
	go func() { _ = srv.Serve(LimitListener(ln, MaxConnections)) }()
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
