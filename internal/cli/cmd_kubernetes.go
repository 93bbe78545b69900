package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

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
			hs, err := hooks.parse()
			if err != nil {
				return err
			}
			req := app.KubernetesBackup{Config: cfg, Cluster: cluster, Tags: sf.tags, Host: sf.hostname(), Databases: dbs,
				Volumes: vf.volumes, Node: a.kubeNode(&vf), Hooks: hs, AnnotationHooks: hooks.annotations,
				Options: kube.BackupOptions{Filter: filt.filter(), LabelSelector: filt.selector,
					ClusterResources: filt.cluster, Concurrency: workers}}
			if a.g.verbose > 0 {
				req.ToolStderr = a.Stderr
			}
			return a.kubeBackup(cmd.Context(), req)
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
			req := app.KubernetesRestore{Snapshot: args[0], Filter: snapshot.Filter{Hosts: hosts}, Options: opts,
				Volumes: vf.volumes, VolumesOnly: volumesOnly, Node: a.kubeNode(&vf)}
			if err := opts.Validate(); err != nil {
				return err
			}
			if req.Config, _, err = a.kubeConfig(&conn); err != nil {
				return err
			}
			return a.kubeRestore(ctx, req)
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

// kubeBackup runs the Kubernetes backup use case on -r and prints its
// summary.
func (a *App) kubeBackup(ctx context.Context, req app.KubernetesBackup) error {
	if err := req.Validate(); err != nil {
		return err
	}
	c, err := a.core()
	if err != nil {
		return err
	}
	if req.Repo, err = a.repoRef(ctx); err != nil {
		return err
	}
	res, err := c.RunKubernetesBackup(ctx, req)
	if err != nil {
		return err
	}
	a.printSourceSummary(res.Snapshot, res.Write)
	return nil
}

// kubeRestore runs the Kubernetes restore use case on -r and prints each
// object's outcome, each volume written back, and a summary (none with
// --volumes-only).
func (a *App) kubeRestore(ctx context.Context, req app.KubernetesRestore) error {
	if err := req.Validate(); err != nil {
		return err
	}
	c, err := a.core()
	if err != nil {
		return err
	}
	if req.Repo, err = a.repoRef(ctx); err != nil {
		return err
	}
	dryRun := req.Options.DryRun
	req.Options.Report = func(res kube.Result) { a.printKubeResult(res, dryRun) }
	req.VolumeRestored = func(v app.KubernetesVolumeRestored) {
		a.out.textf("volume %s restored into %s: %d files, %s", v.Claim, v.Path, v.Files, formatBytes(v.Bytes))
	}
	res, err := c.RunKubernetesRestore(ctx, req)
	if res != nil && !req.VolumesOnly {
		a.printKubeSummary(res.Snapshot, &res.Summary, dryRun, res.Duration)
	}
	return err
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
