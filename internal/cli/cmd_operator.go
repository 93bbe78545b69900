package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/operator"
	"github.com/bunkerbackup/bunker/internal/storage/location"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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

// cliRunner runs the operator's backups and restores as in-process bunker
// commands, each with the repository and credentials in its own
// environment (never on a command line).
type cliRunner struct {
	parent *App
	conn   kubeConnFlags
	// nodeVolumes backs up the volume files this process can reach; off,
	// Backups with volumes: true leave them to the node agents.
	nodeVolumes bool
}

// child returns an App whose environment holds the repository's
// password, with its output captured. Its backends see only repo.Env (the
// allowed keys of the tenant's env Secret): nothing of the operator's own
// credentials, home directory or key files. The tenant's keys never reach
// the rest of the command, so none of them is control (no password
// command, no repository, no kubeconfig, no node root).
func (r *cliRunner) child(repo operator.Repo) (*App, *bytes.Buffer, *bytes.Buffer) {
	getenv := func(k string) string {
		switch k {
		case "BUNKER_PASSWORD":
			return repo.Password
		case "BUNKER_PASSWORD_FILE", "BUNKER_PASSWORD_COMMAND", "BUNKER_REPOSITORY",
			"BUNKER_NEW_PASSWORD", "BUNKER_FROM_PASSWORD":
			return ""
		}
		return r.parent.Getenv(k)
	}
	var stdout, stderr bytes.Buffer
	return &App{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: getenv,
		BackendGetenv: repo.Getenv, BackendPolicy: repo.Policy}, &stdout, &stderr
}

// run runs one bunker command line against repo with --json and returns
// its output and exit code (0 or 3). The error carries the command's own
// error message.
func (r *cliRunner) run(ctx context.Context, repo operator.Repo, args ...string) (string, int, error) {
	if repo.Password == "" {
		return "", 0, fmt.Errorf("repository %s: empty password", repo.URL)
	}
	full := []string{"--json", "-r", repo.URL}
	full = append(full, args...)
	if len(args) >= 2 && args[1] == "kubernetes" {
		// The operator's own cluster access, before any "--".
		var conn []string
		if r.conn.kubeconfig != "" {
			conn = append(conn, "--kubeconfig", r.conn.kubeconfig)
		}
		if r.conn.context != "" {
			conn = append(conn, "--context", r.conn.context)
		}
		full = append(append(append([]string{}, full[:5]...), conn...), full[5:]...)
	}
	child, stdout, _ := r.child(repo)
	code, err := child.exec(ctx, full)
	out := stdout.String()
	if code != 0 && code != 3 {
		if ctx.Err() != nil {
			return out, code, ctx.Err()
		}
		// The command's own error, cause and all (a wrong password stays
		// repository.ErrWrongPassword for the operator's status).
		return out, code, fmt.Errorf("bunker %s: %w (exit %d)", strings.Join(args[:min(2, len(args))], " "), err, code)
	}
	return out, code, nil
}

func intOf(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// core is the use cases' App for repo: its backends see only repo's
// environment and policy (see child).
func (r *cliRunner) core(repo operator.Repo) (*app.App, error) {
	c, err := r.parent.core()
	if err != nil {
		return nil, err
	}
	t := c.With(nil)
	t.Storage.Getenv = repo.Getenv
	if repo.Policy != nil {
		t.Storage.Policy = repo.Policy
	}
	return t, nil
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

func (r *cliRunner) Backup(ctx context.Context, req operator.BackupRequest) (operator.BackupResult, error) {
	spec := req.Spec
	if !r.nodeVolumes {
		spec.Volumes = false
	}
	out, _, err := r.run(ctx, req.Repo, operator.BackupArgs(spec, req.Tags)...)
	if err != nil {
		return operator.BackupResult{}, err
	}
	sum := lastJSON(out, "summary")
	if sum == nil {
		return operator.BackupResult{}, errors.New("backup kubernetes printed no summary")
	}
	res := operator.BackupResult{BytesAdded: intOf(sum["bytes_added"])}
	res.SnapshotID, _ = sum["snapshot_id"].(string)
	if md, ok := sum["metadata"].(map[string]any); ok {
		fmt.Sscan(fmt.Sprint(md["kubernetes_objects"]), &res.Objects)
	}
	return res, nil
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
	s := list[len(list)-1]
	res := operator.BackupResult{SnapshotID: s.ID.String()}
	fmt.Sscan(s.Metadata["kubernetes_objects"], &res.Objects)
	if s.Summary != nil {
		res.BytesAdded = s.Summary.BytesAdded
	}
	return res, true, nil
}

func (r *cliRunner) Restore(ctx context.Context, req operator.RestoreRequest) (operator.RestoreResult, error) {
	out, code, err := r.run(ctx, req.Repo, operator.RestoreArgs(req.Spec, req.Snapshot, req.ClusterResources)...)
	if err != nil {
		return operator.RestoreResult{}, err
	}
	sum := lastJSON(out, "summary")
	if sum == nil {
		return operator.RestoreResult{}, errors.New("restore kubernetes printed no summary")
	}
	return operator.RestoreResult{
		Restored: int(intOf(sum["created"]) + intOf(sum["updated"])),
		Skipped:  int(intOf(sum["skipped"]) + intOf(sum["unchanged"])),
		Failed:   int(intOf(sum["failed"])),
		Partial:  code == 3,
	}, nil
}
