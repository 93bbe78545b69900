package cli

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/bunkerbackup/bunker/internal/operator"
	"github.com/bunkerbackup/bunker/internal/storage/location"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// operatorFlags are the flags of bunker operator.
type operatorFlags struct {
	conn                          kubeConnFlags
	tenant                        tenantPolicyFlags
	adminNS                       []string
	namespace, metrics, health    string
	leaderNS, mode, image, sa     string
	leader, installCRDs, nodeVols bool
	concurrency                   int
	checkEvery                    time.Duration
}

func (f *operatorFlags) add(cmd *cobra.Command) {
	f.conn.add(cmd)
	fl := cmd.Flags()
	f.tenant.add(fl)
	fl.StringVar(&f.namespace, "namespace", "", "watch only this `namespace` (default: all)")
	fl.StringSliceVar(&f.adminNS, "admin-namespace", nil, "`namespaces` whose Backups and Restores may select other namespaces and cluster-scoped objects; \"*\" for all (default: the operator's own, from POD_NAMESPACE); a Backup or Restore elsewhere is confined to its own namespace")
	fl.StringVar(&f.metrics, "metrics-addr", ":8080", "serve Prometheus /metrics on this `address` (0 for none)")
	fl.StringVar(&f.health, "health-addr", ":8081", "serve /healthz and /readyz on this `address` (0 for none)")
	fl.BoolVar(&f.leader, "leader-elect", false, "with several replicas, let one work at a time (a Lease named bunker-operator)")
	fl.StringVar(&f.leaderNS, "leader-election-namespace", "", "the Lease's `namespace` (default: the operator's own)")
	fl.IntVar(&f.concurrency, "concurrency", 2, "run at most `N` backups and restores at once")
	flagRange(fl, 1, 1000, "concurrency")
	fl.StringVar(&f.mode, "mode", string(operator.ModeInProcess), "run backups and restores in this process (inprocess) or as Jobs (job)")
	fl.StringVar(&f.image, "image", "", "with --mode job: the bunker container `image` the Jobs run")
	fl.StringVar(&f.sa, "job-service-account", "bunker-job", "with --mode job: the Jobs' service account (in each namespace with Backups)")
	fl.BoolVar(&f.installCRDs, "install-crds", false, "create or update the bunker.dev CRDs before starting")
	fl.DurationVar(&f.checkEvery, "check-interval", 10*time.Minute, "check each BackupRepository this often")
	flagRange(fl, 1, unbounded, "check-interval")
	fl.BoolVar(&f.nodeVols, "node-volumes", true, "back up the volume files of Backups with volumes: true in this process (a single-node cluster, or the operator outside the cluster); false leaves them to the node agents (bunker agent)")
}

func (a *App) operatorCommand() *cobra.Command {
	var f operatorFlags
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Run the Kubernetes operator: reconcile BackupRepository, Backup, Schedule and Restore objects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg, _, err := a.kubeConfig(&f.conn)
			if err != nil {
				return err
			}
			if f.installCRDs {
				if err := operator.InstallCRDs(ctx, cfg, time.Minute); err != nil {
					return fmt.Errorf("install CRDs: %w", err)
				}
			}
			level := slog.LevelInfo
			if a.g.verbose > 0 {
				level = slog.LevelDebug
			}
			policy, err := f.tenant.policy()
			if err != nil {
				return err
			}
			op, err := operator.New(cfg, operator.Options{
				AdminNamespaces: a.adminNamespaces(cmd, f.adminNS), RepositoryPolicy: policy,
				Namespace: f.namespace, MetricsAddr: f.metrics, HealthAddr: f.health,
				LeaderElection: f.leader, LeaderElectionNamespace: f.leaderNS,
				Runner:      a.kubeRunner(&f.conn, f.nodeVols),
				Concurrency: f.concurrency, Mode: operator.Mode(f.mode), Image: f.image, ServiceAccount: f.sa,
				CheckInterval: f.checkEvery, Logger: a.slogger(level),
			})
			if err != nil {
				return err
			}
			return op.Start(ctx)
		},
	}
	f.add(cmd)
	return cmd
}

// adminNamespaces is --admin-namespace, else (not given) the process's
// own namespace ($POD_NAMESPACE in deploy/kubernetes/), else unset.
func (a *App) adminNamespaces(cmd *cobra.Command, flag []string) []string {
	if cmd.Flags().Changed("admin-namespace") {
		return flag
	}
	if ns := a.Getenv("POD_NAMESPACE"); ns != "" {
		return []string{ns}
	}
	return nil
}

// kubeRunner runs the operator's and the node agent's work in this
// process, with the use cases' App of the global flags.
func (a *App) kubeRunner(conn *kubeConnFlags, nodeVolumes bool) *operator.InProcess {
	return &operator.InProcess{Core: a.core, Getenv: a.Getenv, Kube: a.kubeConn(conn), NodeVolumes: nodeVolumes}
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
