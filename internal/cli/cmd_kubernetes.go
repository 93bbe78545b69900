package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/app/streamtree"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const kubeSource = "kubernetes"

func (a *App) kubernetesCommands() sourceCommands {
	return sourceCommands{backup: a.kubeBackupCommand(), restore: a.kubeRestoreCommand()}
}

// kubeConnFlags are how every Kubernetes command reaches the API server.
type kubeConnFlags struct {
	kubeconfig string
	context    string
}

func (f *kubeConnFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig `file` (default $KUBECONFIG, ~/.kube/config, then the in-cluster service account)")
	fl.StringVar(&f.context, "context", "", "kubeconfig `context` to use (default: its current context)")
}

// kubeConfig loads the client configuration and names the cluster: the
// kubeconfig context's cluster, or "in-cluster".
func (a *App) kubeConfig(f *kubeConnFlags) (*rest.Config, string, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: f.kubeconfig}
	if f.kubeconfig == "" {
		if env := a.Getenv("KUBECONFIG"); env != "" {
			rules.Precedence = strings.Split(env, string(os.PathListSeparator))
		} else if home := a.Getenv("HOME"); home != "" {
			rules.Precedence = []string{home + "/.kube/config"}
		}
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context})
	raw, rawErr := cc.RawConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) && f.kubeconfig == "" && f.context == "" {
			if ic, icErr := rest.InClusterConfig(); icErr == nil {
				return a.tuneKube(ic), "in-cluster", nil
			}
		}
		return nil, "", fmt.Errorf("kubernetes configuration: %w", err)
	}
	name := "cluster"
	if rawErr == nil {
		ctxName := raw.CurrentContext
		if f.context != "" {
			ctxName = f.context
		}
		if c, ok := raw.Contexts[ctxName]; ok && c.Cluster != "" {
			name = c.Cluster
		}
	}
	return a.tuneKube(cfg), name, nil
}

// tuneKube lifts client-go's client-side rate limit (5 requests/s): a
// backup lists each resource once, a restore writes each object once,
// and the API server's own fairness limits still apply.
func (a *App) tuneKube(cfg *rest.Config) *rest.Config {
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = "bunker/" + Version
	// Deprecation warnings for resources we only list are noise.
	cfg.WarningHandler = rest.NoWarnings{}
	return cfg
}

// kubeFilterFlags select namespaces and resources.
type kubeFilterFlags struct {
	includeNS, excludeNS   []string
	includeRes, excludeRes []string
	selector               string
	cluster                string
}

func (f *kubeFilterFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.includeNS, "include-namespaces", nil, "only these namespaces (`globs`, comma separated or repeated)")
	fl.StringSliceVar(&f.excludeNS, "exclude-namespaces", nil, "leave out these namespaces (`globs`)")
	fl.StringSliceVar(&f.includeRes, "include-resources", nil, "only these resources: `names` such as deployments, deployments.apps, a kind or a short name, or globs")
	fl.StringSliceVar(&f.excludeRes, "exclude-resources", nil, "leave out these resources (`names` or globs)")
	fl.StringVarP(&f.selector, "selector", "l", "", "only objects matching this label `selector` (namespaces themselves are always kept)")
	fl.StringVar(&f.cluster, "cluster-resources", kube.ClusterAuto, "cluster-scoped objects: auto (all when no namespace filter, else only what the selected objects need), on, or off")
}

func (f *kubeFilterFlags) filter() kube.Filter {
	return kube.Filter{IncludeNamespaces: f.includeNS, ExcludeNamespaces: f.excludeNS,
		IncludeResources: f.includeRes, ExcludeResources: f.excludeRes}
}

// kubeBackupRequest is one backup of a cluster's objects.
type kubeBackupRequest struct {
	cfg     *rest.Config
	cluster string // names the snapshot path /kubernetes/<cluster>
	opts    kube.BackupOptions
	tags    []string
	host    string
	repo    *repository.Repository // nil: open -r
	quiet   bool
	// databases are backed up through their Services first, each into
	// databases/<ns>/<service>/.
	databases []kube.Database
	// volumes, when set, backs up the files of this node's volumes.
	volumes *kubeVolumeFlags
	hooks   kubeHooks
}

func kubePaths(cluster string) []string { return []string{"/kubernetes/" + cluster} }

// kubeBackup backs up the cluster's objects into one snapshot.
func (a *App) kubeBackup(ctx context.Context, req kubeBackupRequest) (*snapshot.Snapshot, *kube.Manifest, error) {
	if err := req.opts.Validate(); err != nil {
		return nil, nil, err
	}
	clients, err := kube.NewClients(req.cfg)
	if err != nil {
		return nil, nil, err
	}
	if req.opts.Warn == nil {
		req.opts.Warn = func(s string) { a.out.warnf("%s", s) }
	}
	var man *kube.Manifest
	sn, err := a.runSourceBackup(ctx, sourceBackup{
		source: kubeSource, paths: kubePaths(req.cluster), tags: req.tags, host: req.host,
		kind: snapshot.KindFull, repo: req.repo, quiet: req.quiet,
		write: func(ctx context.Context, w source.Sink) (_ map[string]string, err error) {
			var vw *kubeVolumeWork
			if req.volumes != nil || len(req.hooks.flags) > 0 || req.hooks.annotations {
				vf := kubeVolumeFlags{}
				if req.volumes != nil {
					vf = *req.volumes
				}
				if vw, err = a.newKubeVolumeWork(req.cfg, clients, vf, req.hooks, &req.opts.Filter); err != nil {
					return nil, err
				}
				post, err := a.kubePreHooks(ctx, vw)
				if err != nil {
					return nil, err
				}
				defer a.kubePostHooks(vw, post)
			}
			var dbs []string
			for _, d := range req.databases {
				if err := a.kubeDatabaseBackup(ctx, clients, w, d); err != nil {
					return nil, err
				}
				dbs = append(dbs, d.Namespace+"/"+d.Service)
			}
			m, err := kube.Backup(ctx, clients, w, req.opts)
			if err != nil {
				return nil, err
			}
			m.Databases = dbs
			if req.volumes != nil && req.volumes.volumes {
				if m.Volumes, err = a.kubeBackupVolumes(ctx, vw, w); err != nil {
					return nil, err
				}
			}
			if err := kube.WriteManifest(ctx, w, m); err != nil {
				return nil, err
			}
			man = m
			return map[string]string{
				"kubernetes_cluster": req.cluster, "kubernetes_server": m.Server,
				"kubernetes_objects": strconv.Itoa(m.Objects), "kubernetes_namespaces": strconv.Itoa(len(m.Namespaces)),
				"kubernetes_volumes": strconv.Itoa(len(m.Volumes)),
			}, nil
		},
	})
	return sn, man, err
}

// kubeDatabaseBackup takes a logical backup of a database in the cluster,
// reached through its Service, with the password from a Secret.
func (a *App) kubeDatabaseBackup(ctx context.Context, c *kube.Clients, w source.Sink, d kube.Database) error {
	addr, err := kube.ResolveService(ctx, c, d.Namespace, d.Service, d.Port)
	if err != nil {
		return fmt.Errorf("database %s/%s: %w", d.Namespace, d.Service, err)
	}
	host, port, _ := net.SplitHostPort(addr)
	ci := postgres.ConnInfo{"host": host, "port": port}
	if d.User != "" {
		ci = ci.With("user", d.User)
	}
	if d.Secret != "" {
		pw, err := kube.SecretValue(ctx, c, d.Namespace, d.Secret, d.Key)
		if err != nil {
			return fmt.Errorf("database %s/%s: password: %w", d.Namespace, d.Service, err)
		}
		ci = ci.With("password", pw)
	}
	var stderr io.Writer
	if a.g.verbose > 0 {
		stderr = a.Stderr
	}
	pc, err := postgres.Open(postgres.Config{Conn: ci, Stderr: stderr, Getenv: a.Getenv})
	if err != nil {
		return err
	}
	defer pc.Close()
	a.out.infof("backing up PostgreSQL %s/%s at %s", d.Namespace, d.Service, addr)
	if _, err := pc.BackupLogical(ctx, source.PrefixSink(w, d.Dir()), postgres.LogicalOptions{Databases: d.Databases}); err != nil {
		return fmt.Errorf("database %s/%s: %w", d.Namespace, d.Service, err)
	}
	return nil
}

func (a *App) kubeBackupCommand() *cobra.Command {
	var (
		dbSpecs []string
		vf      kubeVolumeFlags
		hooks   kubeHooks
		conn    kubeConnFlags
		filt    kubeFilterFlags
		sf      sourceFlags
		name    string
		workers int
	)
	cmd := &cobra.Command{
		Use:   "kubernetes",
		Short: "Back up a Kubernetes cluster's objects (every API resource, including custom resources)",
		Long: `Back up the objects of a Kubernetes cluster: every resource the API server
serves (built-in and custom), in its preferred version, one JSON file per object:

  namespaces/<ns>/<group>/<resource>/<name>.json
  cluster/<group>/<resource>/<name>.json          (the core group is "core")

Fields the server fills in (uid, resourceVersion, managedFields,
creationTimestamp, generation, status where it cannot be restored) are
removed, so an unchanged object adds nothing to the repository. Events,
nodes, leases and Bunker's own Backup and Restore requests are left out
unless named in --include-resources. Secrets are stored encrypted like
every file and never printed.

The snapshot's path is /kubernetes/<cluster>, the kubeconfig's cluster
name (--cluster-name to choose another).

Exit codes: 0 saved, 1 failed (no snapshot saved).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, cluster, err := a.kubeConfig(&conn)
			if err != nil {
				return err
			}
			if name != "" {
				cluster = name
			}
			var dbs []kube.Database
			for _, s := range dbSpecs {
				d, err := kube.ParseDatabase(s)
				if err != nil {
					return fmt.Errorf("--database: %w", err)
				}
				dbs = append(dbs, d)
			}
			_, _, err = a.kubeBackup(cmd.Context(), kubeBackupRequest{
				cfg: cfg, cluster: cluster, tags: sf.tags, host: sf.hostname(), databases: dbs, volumes: &vf, hooks: hooks,
				opts: kube.BackupOptions{Filter: filt.filter(), LabelSelector: filt.selector,
					ClusterResources: filt.cluster, Concurrency: workers},
			})
			return err
		},
	}
	conn.add(cmd)
	filt.add(cmd)
	sf.add(cmd, "")
	cmd.Flags().StringVar(&name, "cluster-name", "", "name the cluster in the snapshot path (default: the kubeconfig's cluster name)")
	cmd.Flags().IntVarP(&workers, "jobs", "j", 8, "list this many resources at once")
	flagRange(cmd.Flags(), 1, 1000, "jobs")
	vf.add(cmd, true)
	cmd.Flags().StringArrayVar(&hooks.flags, "exec-hook", nil, "run a command in a pod before the backup: `ns/pod[:container]=command args` (repeatable; pods' "+volume.HookAnnotation(volume.PhasePre, "command")+" annotations run too)")
	cmd.Flags().BoolVar(&hooks.annotations, "annotation-hooks", true, "run the pre and post hooks that pods of the selected namespaces declare in annotations")
	cmd.Flags().StringArrayVar(&dbSpecs, "database", nil, "first take a consistent logical backup of a database in the cluster through its Service: `postgres:NS/SERVICE[:PORT][,user=U][,secret=NAME][,key=KEY][,db=NAME]` (password from that Secret; repeatable)")
	return cmd
}

func (a *App) kubeRestoreCommand() *cobra.Command {
	var (
		conn        kubeConnFlags
		filt        kubeFilterFlags
		mapping     []string
		existing    string
		modFile     string
		privileged  []string
		dryRun      bool
		workers     int
		hosts       []string
		crdWait     time.Duration
		vf          kubeVolumeFlags
		volumesOnly bool
	)
	cmd := &cobra.Command{
		Use:   "kubernetes SNAPSHOT",
		Short: "Restore Kubernetes objects from a snapshot, in dependency order",
		Long: `Restore the objects of a Kubernetes backup into the cluster of the current
kubeconfig context (it may be another cluster than the one backed up).

Objects are applied in dependency order: CustomResourceDefinitions (and the
restore waits until they are served), namespaces, storage classes,
persistent volumes and claims, service accounts, RBAC, secrets, config
maps, services, workloads, then everything else, custom resources last.
Objects a controller owns (Pods of a ReplicaSet, ReplicaSets of a
Deployment) are skipped: their owner recreates them. Service account
token secrets are skipped: the cluster issues new ones.

An object that exists is left alone (--existing skip, the default) or
replaced by the backed-up version (--existing update); one that is equal
is reported unchanged. --dry-run changes nothing and lists what would be
created or updated, with the server validating each object.

--modifiers applies JSON patches and merge patches from a file (Velero's
resource-modifier format; see docs/KUBERNETES.md).

Exit codes: 0 every object restored (or skipped as asked), 1 the restore
could not run, 3 some objects failed (each is listed).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			m, err := kube.ParseMapping(mapping)
			if err != nil {
				return err
			}
			opts := kube.RestoreOptions{Filter: filt.filter(), LabelSelector: filt.selector, ClusterResources: filt.cluster,
				NamespaceMapping: m, Existing: existing, DryRun: dryRun, Concurrency: workers, CRDTimeout: crdWait, Privileged: privileged}
			if modFile != "" {
				b, err := os.ReadFile(modFile)
				if err != nil {
					return fmt.Errorf("--modifiers: %w", err)
				}
				if opts.Modifiers, err = kube.ParseModifiers(b); err != nil {
					return fmt.Errorf("--modifiers %s: %w", modFile, err)
				}
			}
			if err := opts.Validate(); err != nil {
				return err
			}
			cfg, _, err := a.kubeConfig(&conn)
			if err != nil {
				return err
			}
			r, sn, err := a.openSourceSnapshot(ctx, args[0], kubeSource, snapshot.Filter{Hosts: hosts})
			if err != nil {
				return err
			}
			sum, err := a.kubeRestore(ctx, r, sn, cfg, opts, &vf, volumesOnly)
			if err != nil {
				return err
			}
			if sum.Partial() {
				return &app.PartialError{Msg: fmt.Sprintf("%d objects or volumes could not be restored (listed above)", sum.Failed)}
			}
			return nil
		},
	}
	conn.add(cmd)
	filt.add(cmd)
	fl := cmd.Flags()
	fl.StringSliceVar(&mapping, "namespace-mapping", nil, "restore namespace old into new (`old=new`, comma separated or repeated)")
	fl.StringVar(&existing, "existing", kube.ExistingSkip, "an object that exists: skip (leave it) or update (replace it with the backup's)")
	fl.StringVar(&modFile, "modifiers", "", "apply the resource modifiers in this YAML `file`")
	fl.StringSliceVar(&privileged, "privileged", nil, "also restore these privilege-granting `objects`: clusterroles, clusterrolebindings, webhook configurations, admission policies, apiservices, CRDs with conversion webhooks, pod-security-labels (of namespaces), or all; left out, they are skipped and namespaces keep the target's Pod Security labels")
	fl.BoolVar(&dryRun, "dry-run", false, "change nothing; list what would be created or updated")
	fl.IntVarP(&workers, "jobs", "j", 8, "apply this many objects at once")
	flagRange(fl, 1, 1000, "jobs")
	fl.StringArrayVar(&hosts, "host", nil, "with latest: only snapshots of this `host`")
	fl.DurationVar(&crdWait, "crd-timeout", time.Minute, "how long to wait for restored CustomResourceDefinitions to be served")
	vf.add(cmd, false)
	fl.BoolVar(&volumesOnly, "volumes-only", false, "restore no objects, only write the volume files back into the claims' volumes on this node (e.g. once CSI volumes are mounted)")
	return cmd
}

// kubeRestore restores snapshot sn into the cluster of cfg and prints
// each object's outcome and a summary.
//
// With vf.volumes, the volume files are written back after the claims are
// restored and before workloads; with volumesOnly, only that is done.
// Volumes whose data could not be written count as failed objects.
func (a *App) kubeRestore(ctx context.Context, r *repository.Repository, sn *snapshot.Snapshot, cfg *rest.Config, o kube.RestoreOptions, vf *kubeVolumeFlags, volumesOnly bool) (*kube.Summary, error) {
	clients, err := kube.NewClients(cfg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	tree := streamtree.NewReader(r, sn.Tree)
	volFailed := 0
	if vf != nil && (vf.volumes || volumesOnly) {
		if o.DryRun {
			return nil, errors.New("--volumes cannot be combined with --dry-run")
		}
		o.BeforeWorkloads = func(ctx context.Context) error {
			var err error
			volFailed, err = a.kubeRestoreVolumes(ctx, tree, cfg, *vf, o.NamespaceMapping, &o.Filter)
			return err
		}
	}
	if volumesOnly {
		if err := o.BeforeWorkloads(ctx); err != nil {
			return nil, err
		}
		return &kube.Summary{Failed: volFailed}, nil
	}
	user := o.Report
	o.Report = func(res kube.Result) {
		if user != nil {
			user(res)
		}
		a.printKubeResult(res, o.DryRun)
	}
	sum, err := kube.Restore(ctx, clients, tree, o)
	if err != nil {
		return sum, fmt.Errorf("restore snapshot %s: %w", sn.ShortID(), err)
	}
	sum.Failed += volFailed
	a.printKubeSummary(sn, sum, o.DryRun, time.Since(start))
	return sum, nil
}

func kubeObjectName(res kube.Result) string {
	gr := res.Resource
	if res.Group != "" {
		gr += "." + res.Group
	}
	if res.Namespace != "" {
		return gr + " " + res.Namespace + "/" + res.Name
	}
	return gr + " " + res.Name
}

func (a *App) printKubeResult(res kube.Result, dryRun bool) {
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "object", "group": res.Group, "resource": res.Resource,
			"namespace": res.Namespace, "name": res.Name, "action": res.Action, "reason": res.Reason})
		return
	}
	line := fmt.Sprintf("%-12s %s", res.Action, kubeObjectName(res))
	if res.Reason != "" {
		line += ": " + res.Reason
	}
	switch {
	case res.Action == kube.ActionFailed:
		a.out.warnf("%s", line)
	case dryRun || a.g.verbose > 0:
		a.out.textf("%s", line)
	}
}

func (a *App) printKubeSummary(sn *snapshot.Snapshot, s *kube.Summary, dryRun bool, d time.Duration) {
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "summary", "snapshot_id": sn.ID.String(), "dry_run": dryRun,
			"created": s.Created, "updated": s.Updated, "unchanged": s.Unchanged, "skipped": s.Skipped,
			"failed": s.Failed, "planned": s.Planned, "duration_seconds": d.Seconds()})
		return
	}
	if dryRun {
		a.out.textf("Dry run of snapshot %s: %d would be created or updated, %d unchanged, %d skipped, %d failed",
			sn.ShortID(), s.Planned, s.Unchanged, s.Skipped, s.Failed)
		return
	}
	a.out.textf("Restored snapshot %s in %s: %d created, %d updated, %d unchanged, %d skipped, %d failed",
		sn.ShortID(), formatDuration(d), s.Created, s.Updated, s.Unchanged, s.Skipped, s.Failed)
}
