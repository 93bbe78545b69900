package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
	"github.com/bunkerbackup/bunker/internal/storage/location"
)

// Mode says where Backups and Restores run.
type Mode string

// Modes.
const (
	// ModeInProcess runs them in the operator's process through the Runner.
	ModeInProcess Mode = "inprocess"
	// ModeJob runs each in a batch/v1 Job of Options.Image that runs
	// `bunker backup kubernetes` or `bunker restore kubernetes`.
	ModeJob Mode = "job"
)

// Clock is where the operator gets the time from (schedules, status
// times); tests inject a fake one.
type Clock interface {
	Now() time.Time
}

var setGlobalLogger sync.Once

// SetGlobalLogger gives controller-runtime's global logger a handler, once
// per process (later calls do nothing): parts of controller-runtime log
// through it and print a stack trace to stderr when none was set. The
// operator calls it with its own logger; so does anything else that uses a
// controller-runtime client.
func SetGlobalLogger(l *slog.Logger) {
	setGlobalLogger.Do(func() { ctrllog.SetLogger(logr.FromSlogHandler(l.Handler())) })
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Options configure an Operator. The zero value of every field but
// Runner (and Image in job mode) is a working default.
type Options struct {
	// Namespace is the one namespace to watch; "" watches all.
	Namespace string
	// AdminNamespaces are the namespaces whose Backups and Restores may
	// reach other namespaces and cluster-scoped objects; "*" makes every
	// namespace one. A Backup or Restore in any other namespace is
	// confined to its own (docs/OPERATOR.md, Tenancy). Default none.
	AdminNamespaces []string
	// RepositoryPolicy limits the repositories of namespaces that are not
	// admin namespaces: schemes, hosts, and whether the operator lends
	// its own identity. Default DefaultTenantPolicy().
	RepositoryPolicy *location.Policy
	// MetricsAddr is the listen address of /metrics (e.g. ":8080");
	// "" or "0" serves none.
	MetricsAddr string
	// HealthAddr is the listen address of /healthz and /readyz (e.g.
	// ":8081"); "" or "0" serves none.
	HealthAddr string
	// LeaderElection makes only one of several replicas work, holding a
	// Lease named "bunker-operator" in LeaderElectionNamespace.
	LeaderElection bool
	// LeaderElectionNamespace is where the Lease lives; "" is the
	// operator's own namespace when it runs in a cluster.
	LeaderElectionNamespace string
	// Runner does the work. Required (job mode uses Check and FindBackup).
	Runner Runner
	// Concurrency is how many Backups and Restores run at once in process
	// mode, and how many repository checks and snapshot look-ups run at
	// once; default 2.
	Concurrency int
	// Clock is the time source; default the wall clock.
	Clock Clock
	// Mode is ModeInProcess (default) or ModeJob.
	Mode Mode
	// Image is the bunker container image Jobs run. Required in job mode.
	Image string
	// ServiceAccount runs the Jobs; it must exist in every namespace that
	// holds Backups or Restores. Default "bunker-job".
	ServiceAccount string
	// CheckInterval is how often a BackupRepository is checked again;
	// default 10 minutes.
	CheckInterval time.Duration
	// Logger receives the operator's and controller-runtime's logs;
	// default slog.Default().
	Logger *slog.Logger
	// Registry is where the metrics are registered; default
	// controller-runtime's metrics.Registry, which MetricsAddr serves.
	Registry prometheus.Registerer
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	switch {
	case o.Runner == nil:
		return errors.New("operator: no Runner")
	case o.Concurrency < 0:
		return fmt.Errorf("operator: concurrency %d: must be at least 1", o.Concurrency)
	case o.Mode != "" && o.Mode != ModeInProcess && o.Mode != ModeJob:
		return fmt.Errorf("operator: mode %q: want %q or %q", o.Mode, ModeInProcess, ModeJob)
	case o.Mode == ModeJob && o.Image == "":
		return errors.New("operator: job mode needs the image the Jobs run")
	case o.CheckInterval < 0:
		return fmt.Errorf("operator: check interval %v is negative", o.CheckInterval)
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.RepositoryPolicy == nil {
		o.RepositoryPolicy = DefaultTenantPolicy()
	}
	if o.Concurrency == 0 {
		o.Concurrency = 2
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Mode == "" {
		o.Mode = ModeInProcess
	}
	if o.ServiceAccount == "" {
		o.ServiceAccount = "bunker-job"
	}
	if o.CheckInterval == 0 {
		o.CheckInterval = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = ctrlmetrics.Registry
	}
	if o.MetricsAddr == "" {
		o.MetricsAddr = "0"
	}
	if o.HealthAddr == "0" {
		o.HealthAddr = ""
	}
}

// managedBy labels the Jobs the operator creates; its cache watches only
// those.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	managerName    = "bunker-operator"
)

// Operator is the controller manager with the Bunker controllers.
type Operator struct {
	opts     Options
	mgr      manager.Manager
	client   client.Client // cached reads, direct writes
	reader   client.Reader // uncached: Secrets, and re-reads before acting
	recorder events.EventRecorder
	metrics  *metrics
	log      *slog.Logger
	work     *pool // Backups and Restores (in-process mode)
	light    *pool // repository checks and snapshot look-ups
	running  *tracker
}

// Scheme returns a scheme with the built-in kinds and bunker.dev/v1alpha1.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// New builds the operator for the cluster cfg points at. The CRDs must be
// installed (InstallCRDs) before Start.
func New(cfg *rest.Config, opts Options) (*Operator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	// Parts of controller-runtime log through its global logger, and
	// print a stack trace to stderr when none was set: the first
	// operator's logger becomes it.
	SetGlobalLogger(opts.Logger)
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	cacheOpts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			// Only the operator's Jobs, not every Job of the cluster.
			&batchv1.Job{}: {Label: labels.SelectorFromSet(labels.Set{labelManagedBy: managerName})},
		},
	}
	if opts.Namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{opts.Namespace: {}}
	}
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                  Scheme(),
		Logger:                  logr.FromSlogHandler(opts.Logger.Handler()),
		Cache:                   cacheOpts,
		Client:                  client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:  opts.HealthAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        managerName,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// Several operators in one process (tests) would otherwise clash
		// over the controller names metrics are labelled with.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("operator: create controller manager: %w", err)
	}
	if opts.HealthAddr != "" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
	}
	o := &Operator{
		opts:     opts,
		mgr:      mgr,
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
		recorder: mgr.GetEventRecorder(managerName),
		metrics:  m,
		log:      opts.Logger,
		work:     newPool(opts.Concurrency),
		light:    newPool(opts.Concurrency),
		running:  newTracker(m),
	}
	if err := o.setupIndexes(); err != nil {
		return nil, err
	}
	for _, setup := range []func() error{o.setupRepositories, o.setupBackups, o.setupRestores, o.setupSchedules} {
		if err := setup(); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// Start runs the controllers until ctx ends or the manager fails (e.g. it
// lost the leader election), then cancels the work in flight and waits
// for it. Work cancelled this way stays "Running" and is resumed by the
// next start.
func (o *Operator) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o.work.start(ctx)
	o.light.start(ctx)
	err := o.mgr.Start(ctx)
	cancel()
	o.work.wait()
	o.light.wait()
	if err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	return nil
}

// Manager returns the controller manager, e.g. to add runnables.
func (o *Operator) Manager() manager.Manager { return o.mgr }
