package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/operator"
	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/storage/location"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
)

func (a *App) operatorCommand() *cobra.Command {
	var (
		conn        kubeConnFlags
		namespace   string
		metrics     string
		health      string
		leader      bool
		leaderNS    string
		concurrency int
		mode        string
		image       string
		sa          string
		installCRDs bool
		checkEvery  time.Duration
		nodeVolumes bool
		adminNS     []string
		tenant      tenantPolicyFlags
	)
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Run the Kubernetes operator: reconcile BackupRepository, Backup, Schedule and Restore objects",
		Long: `Run the Bunker operator, a controller for the bunker.dev/v1alpha1 custom
resources BackupRepository, Backup, Schedule and Restore (docs/OPERATOR.md,
manifests in deploy/kubernetes/).

A Backup or Restore runs in this process (--mode inprocess, the default:
the same code as "bunker backup kubernetes" and "bunker restore
kubernetes") or as a Kubernetes Job running the bunker image (--mode job).
Results go to the objects' status and to Prometheus metrics on
--metrics-addr. The operator survives restarts: a Backup that was running
when it stopped is finished (or found already saved) on the next start,
never repeated once completed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, _, err := a.kubeConfig(&conn)
			if err != nil {
				return err
			}
			if installCRDs {
				if err := operator.InstallCRDs(ctx, cfg, time.Minute); err != nil {
					return fmt.Errorf("install CRDs: %w", err)
				}
			}
			level := slog.LevelInfo
			if a.g.verbose > 0 {
				level = slog.LevelDebug
			}
			var h slog.Handler = slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: level})
			if a.g.json {
				h = slog.NewJSONHandler(a.Stderr, &slog.HandlerOptions{Level: level})
			}
			if !cmd.Flags().Changed("admin-namespace") {
				// Default: the operator's own namespace (POD_NAMESPACE in
				// deploy/kubernetes/operator.yaml), else none.
				adminNS = nil
				if ns := a.Getenv("POD_NAMESPACE"); ns != "" {
					adminNS = []string{ns}
				}
			}
			policy, err := tenant.policy()
			if err != nil {
				return err
			}
			op, err := operator.New(cfg, operator.Options{
				AdminNamespaces: adminNS, RepositoryPolicy: policy,
				Namespace: namespace, MetricsAddr: metrics, HealthAddr: health,
				LeaderElection: leader, LeaderElectionNamespace: leaderNS,
				Runner:      &cliRunner{parent: a, conn: conn, nodeVolumes: nodeVolumes},
				Concurrency: concurrency, Mode: operator.Mode(mode), Image: image, ServiceAccount: sa,
				CheckInterval: checkEvery, Logger: slog.New(h),
			})
			if err != nil {
				return err
			}
			return op.Start(ctx)
		},
	}
	conn.add(cmd)
	fl := cmd.Flags()
	tenant.add(fl)
	fl.StringVar(&namespace, "namespace", "", "watch only this `namespace` (default: all)")
	fl.StringSliceVar(&adminNS, "admin-namespace", nil, "`namespaces` whose Backups and Restores may select other namespaces and cluster-scoped objects; \"*\" for all (default: the operator's own, from POD_NAMESPACE); a Backup or Restore elsewhere is confined to its own namespace")
	fl.StringVar(&metrics, "metrics-addr", ":8080", "serve Prometheus /metrics on this `address` (0 for none)")
	fl.StringVar(&health, "health-addr", ":8081", "serve /healthz and /readyz on this `address` (0 for none)")
	fl.BoolVar(&leader, "leader-elect", false, "with several replicas, let one work at a time (a Lease named bunker-operator)")
	fl.StringVar(&leaderNS, "leader-election-namespace", "", "the Lease's `namespace` (default: the operator's own)")
	fl.IntVar(&concurrency, "concurrency", 2, "run at most `N` backups and restores at once")
	flagRange(fl, 1, 1000, "concurrency")
	fl.StringVar(&mode, "mode", string(operator.ModeInProcess), "run backups and restores in this process (inprocess) or as Jobs (job)")
	fl.StringVar(&image, "image", "", "with --mode job: the bunker container `image` the Jobs run")
	fl.StringVar(&sa, "job-service-account", "bunker-job", "with --mode job: the Jobs' service account (in each namespace with Backups)")
	fl.BoolVar(&installCRDs, "install-crds", false, "create or update the bunker.dev CRDs before starting")
	fl.DurationVar(&checkEvery, "check-interval", 10*time.Minute, "check each BackupRepository this often")
	flagRange(fl, 1, unbounded, "check-interval")
	fl.BoolVar(&nodeVolumes, "node-volumes", true, "back up the volume files of Backups with volumes: true in this process (a single-node cluster, or the operator outside the cluster); false leaves them to the node agents (bunker agent)")
	return cmd
}

// tenantPolicyFlags set the policy of repositories outside the admin
// namespaces (the operator's and the node agent's).
type tenantPolicyFlags struct {
	schemes, hosts []string
	ambient        bool
}

func (f *tenantPolicyFlags) add(fl *pflag.FlagSet) {
	fl.StringSliceVar(&f.schemes, "tenant-schemes", operator.TenantSchemes, "the repository `schemes` a BackupRepository outside an admin namespace may use (s3, gs, azure, sftp, rest, local)")
	fl.StringSliceVar(&f.hosts, "tenant-hosts", nil, "the `hosts` a repository outside an admin namespace may connect to: names, *.domain, addresses, CIDR blocks (default: any, but never a loopback, link-local, unspecified or multicast address unless listed)")
	fl.BoolVar(&f.ambient, "tenant-ambient-credentials", false, "let repositories outside an admin namespace without credentials of their own use this process's identity (instance role, workload identity, credentials files)")
}

func (f *tenantPolicyFlags) policy() (*location.Policy, error) {
	p, err := location.NewPolicy(location.PolicyOptions{Schemes: f.schemes, Hosts: f.hosts, AmbientCredentials: f.ambient})
	if err != nil {
		return nil, fmt.Errorf("--tenant-schemes/--tenant-hosts: %w", err)
	}
	return p, nil
}

// cliRunner runs the operator's backups and restores in this process
// through the use cases (app.RunKubernetesBackup, RunKubernetesRestore),
// each with the repository's password in its request and its backends
// confined to the repository's own environment and policy.
type cliRunner struct {
	parent *App
	conn   kubeConnFlags
	// nodeVolumes backs up the volume files this process can reach; off,
	// Backups with volumes: true leave them to the node agents.
	nodeVolumes bool
}

// core is the use cases' App for repo. Its backends see only repo.Env
// (the allowed keys of the tenant's env Secret) and repo.Policy: nothing
// of the operator's own credentials, home directory or key files. The
// tenant's keys never reach the rest of the use case, so none of them is
// control (no password command, no repository, no kubeconfig, no node
// root); the password is repo's, passed in the request, and the
// operator's own password settings are hidden too.
func (r *cliRunner) core(repo operator.Repo) (*app.App, error) {
	c, err := r.parent.core()
	if err != nil {
		return nil, err
	}
	t := c.With(nil)
	t.Getenv = func(k string) string {
		switch k {
		case "BUNKER_PASSWORD", "BUNKER_PASSWORD_FILE", "BUNKER_PASSWORD_COMMAND", "BUNKER_REPOSITORY", "BUNKER_REPOSITORY_FILE",
			"BUNKER_NEW_PASSWORD", "BUNKER_FROM_PASSWORD", "BUNKER_FROM_PASSWORD_FILE", "BUNKER_FROM_PASSWORD_COMMAND",
			"BUNKER_FROM_REPOSITORY", "BUNKER_FROM_REPOSITORY_FILE":
			return ""
		}
		return r.parent.Getenv(k)
	}
	t.Storage.Getenv = repo.Getenv
	if repo.Policy != nil {
		t.Storage.Policy = repo.Policy
	}
	return t, nil
}

// open is the use cases' App for repo, the repository's reference, and
// the operator's cluster configuration and cluster name.
func (r *cliRunner) open(repo operator.Repo) (*app.App, app.Repo, *rest.Config, string, error) {
	if repo.Password == "" {
		return nil, app.Repo{}, nil, "", fmt.Errorf("repository %s: empty password", repo.URL)
	}
	c, err := r.core(repo)
	if err != nil {
		return nil, app.Repo{}, nil, "", err
	}
	cfg, cluster, err := r.parent.kubeConfig(&r.conn)
	if err != nil {
		return nil, app.Repo{}, nil, "", err
	}
	return c, app.Repo{Location: repo.URL, Password: repo.Password}, cfg, cluster, nil
}

// failed is the error of a use case that returned err: the context's
// when it ended (interrupted, not failed), else err, cause and all (a
// wrong password stays repository.ErrWrongPassword for the status).
func failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Check opens the repository: its location, credentials and password.
func (r *cliRunner) Check(ctx context.Context, repo operator.Repo) error {
	c, err := r.core(repo)
	if err != nil {
		return err
	}
	ctx, done := app.WithScope(ctx)
	defer done()
	_, err = c.Open(ctx, app.Repo{Location: repo.URL, Password: repo.Password})
	return err
}

// kubeSelection is the filter of a Backup's or Restore's selection.
func kubeSelection(s v1alpha1.Selection) kube.Filter {
	return kube.Filter{IncludeNamespaces: s.IncludeNamespaces, ExcludeNamespaces: s.ExcludeNamespaces,
		IncludeResources: s.IncludeResources, ExcludeResources: s.ExcludeResources}
}

// kubeClusterMode is the cluster-resources mode of c: nil is auto.
func kubeClusterMode(c *bool) string {
	switch {
	case c == nil:
		return kube.ClusterAuto
	case *c:
		return kube.ClusterOn
	}
	return kube.ClusterOff
}

// Backup runs the Backup as 'bunker backup kubernetes' would with its
// defaults: eight resources listed at once, the pods' annotation hooks,
// and with volumes (when this process backs them up), those of $NODE_NAME.
func (r *cliRunner) Backup(ctx context.Context, req operator.BackupRequest) (operator.BackupResult, error) {
	c, repo, cfg, cluster, err := r.open(req.Repo)
	if err != nil {
		return operator.BackupResult{}, err
	}
	spec := req.Spec
	ctx, done := app.WithScope(ctx)
	defer done()
	res, err := c.RunKubernetesBackup(ctx, app.KubernetesBackup{Repo: repo, Config: cfg, Cluster: cluster, Tags: req.Tags,
		Options: kube.BackupOptions{Filter: kubeSelection(spec.Selection), LabelSelector: spec.LabelSelector,
			ClusterResources: kubeClusterMode(spec.IncludeClusterResources), Concurrency: 8},
		Volumes: spec.Volumes && r.nodeVolumes, Node: app.KubernetesNode{Node: r.parent.Getenv("NODE_NAME")}, AnnotationHooks: true})
	if err != nil {
		return operator.BackupResult{}, failed(ctx, err)
	}
	return backupResult(res.Snapshot), nil
}

// backupResult is what the operator records of a Kubernetes backup.
func backupResult(s *snapshot.Snapshot) operator.BackupResult {
	res := operator.BackupResult{SnapshotID: s.ID.String()}
	fmt.Sscan(s.Metadata["kubernetes_objects"], &res.Objects)
	if s.Summary != nil {
		res.BytesAdded = s.Summary.BytesAdded
	}
	return res
}

// volumeBackup runs the node agent's backup of this node's volume files
// into repo and returns the snapshot's ID.
func (r *cliRunner) volumeBackup(ctx context.Context, repo operator.Repo, b app.KubernetesVolumeBackup) (string, error) {
	c, ref, cfg, cluster, err := r.open(repo)
	if err != nil {
		return "", err
	}
	b.Repo, b.Config, b.Cluster = ref, cfg, cluster
	ctx, done := app.WithScope(ctx)
	defer done()
	res, err := c.RunKubernetesVolumeBackup(ctx, b)
	if err != nil {
		return "", failed(ctx, err)
	}
	return res.Snapshot.ID.String(), nil
}

// FindBackup finds the newest snapshot tagged tag.
func (r *cliRunner) FindBackup(ctx context.Context, repo operator.Repo, tag string) (operator.BackupResult, bool, error) {
	c, err := r.core(repo)
	if err != nil {
		return operator.BackupResult{}, false, err
	}
	ctx, done := app.WithScope(ctx)
	defer done()
	rp, err := c.Open(ctx, app.Repo{Location: repo.URL, Password: repo.Password})
	if err != nil {
		return operator.BackupResult{}, false, fmt.Errorf("list snapshots: %w", err)
	}
	all, err := c.LoadSnapshots(ctx, rp)
	if err != nil {
		return operator.BackupResult{}, false, fmt.Errorf("list snapshots: %w", err)
	}
	list := snapshot.Filter{Tags: []string{tag}}.Apply(all)
	if len(list) == 0 {
		return operator.BackupResult{}, false, nil
	}
	return backupResult(list[len(list)-1]), true, nil
}

// Restore runs the Restore as 'bunker restore kubernetes' would with its
// defaults: eight objects applied at once, a minute for new CRDs to be
// served, no privilege-granting objects.
func (r *cliRunner) Restore(ctx context.Context, req operator.RestoreRequest) (operator.RestoreResult, error) {
	c, repo, cfg, _, err := r.open(req.Repo)
	if err != nil {
		return operator.RestoreResult{}, err
	}
	spec := req.Spec
	var mapping map[string]string
	if len(spec.NamespaceMapping) > 0 {
		mapping = make(map[string]string, len(spec.NamespaceMapping))
		for from, to := range spec.NamespaceMapping {
			mapping[from] = string(to)
		}
	}
	existing := string(spec.Existing)
	if existing == "" {
		existing = kube.ExistingSkip
	}
	ctx, done := app.WithScope(ctx)
	defer done()
	res, err := c.RunKubernetesRestore(ctx, app.KubernetesRestore{Repo: repo, Snapshot: req.Snapshot, Config: cfg,
		Options: kube.RestoreOptions{Filter: kubeSelection(spec.Selection), LabelSelector: spec.LabelSelector,
			ClusterResources: kubeClusterMode(req.ClusterResources), NamespaceMapping: mapping, Existing: existing,
			DryRun: spec.DryRun, Concurrency: 8, CRDTimeout: time.Minute}})
	var pe *app.PartialError
	if err != nil && !errors.As(err, &pe) {
		return operator.RestoreResult{}, failed(ctx, err)
	}
	s := res.Summary
	return operator.RestoreResult{Restored: s.Created + s.Updated, Skipped: s.Skipped + s.Unchanged, Failed: s.Failed,
		Partial: pe != nil}, nil
}
