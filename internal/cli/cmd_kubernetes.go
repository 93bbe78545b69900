package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
)

func (a *App) kubernetesCommands() sourceCommands {
	return sourceCommands{backup: a.kubeBackupCommand(), restore: a.kubeRestoreCommand()}
}

// kubeConnFlags are how every Kubernetes command reaches the API server.
type kubeConnFlags struct{ kubeconfig, context string }

func (f *kubeConnFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig `file` (default $KUBECONFIG, ~/.kube/config, then the in-cluster service account)")
	fl.StringVar(&f.context, "context", "", "kubeconfig `context` to use (default: its current context)")
}

// kubeConn is how the Kubernetes commands reach the API server.
func (a *App) kubeConn(f *kubeConnFlags) kube.Conn {
	return kube.Conn{Kubeconfig: f.kubeconfig, Context: f.context, Getenv: a.Getenv, UserAgent: "bunker/" + Version}
}

// kubeConfig loads the client configuration and names the cluster: the
// kubeconfig context's cluster, or "in-cluster".
func (a *App) kubeConfig(f *kubeConnFlags) (*rest.Config, string, error) {
	return a.kubeConn(f).Config()
}

// kubeFilterFlags select namespaces and resources.
type kubeFilterFlags struct {
	kube.Filter
	selector, cluster string
}

func (f *kubeFilterFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.IncludeNamespaces, "include-namespaces", nil, "only these namespaces (`globs`, comma separated or repeated)")
	fl.StringSliceVar(&f.ExcludeNamespaces, "exclude-namespaces", nil, "leave out these namespaces (`globs`)")
	fl.StringSliceVar(&f.IncludeResources, "include-resources", nil, "only these resources: `names` such as deployments, deployments.apps, a kind or a short name, or globs")
	fl.StringSliceVar(&f.ExcludeResources, "exclude-resources", nil, "leave out these resources (`names` or globs)")
	fl.StringVarP(&f.selector, "selector", "l", "", "only objects matching this label `selector` (namespaces themselves are always kept)")
	fl.StringVar(&f.cluster, "cluster-resources", kube.ClusterAuto, "cluster-scoped objects: auto (all when no namespace filter, else only what the selected objects need), on, or off")
}

// kubeVolumeFlags say where this node's volumes are and how to read them.
type kubeVolumeFlags struct {
	volumes bool
	node    app.KubernetesNode
}

func (f *kubeVolumeFlags) add(cmd *cobra.Command, backup bool) {
	fl := cmd.Flags()
	if backup {
		fl.BoolVar(&f.volumes, "volumes", false, "also back up the files of persistent volume claims that this node can read, into volumes/<ns>/<claim>/")
		fl.BoolVar(&f.node.CSISnapshots, "csi-snapshots", false, "with --volumes: read CSI volumes from a VolumeSnapshot clone instead of the live mount")
		fl.StringVar(&f.node.SnapshotClass, "snapshot-class", "", "with --csi-snapshots: the VolumeSnapshotClass (default: the driver's default class)")
		fl.StringVar(&f.node.MoverImage, "mover-image", "", "with --csi-snapshots: the image of the pod that mounts the clone (default "+volume.DefaultMoverImage+")")
		fl.DurationVar(&f.node.SnapshotTimeout, "snapshot-timeout", volume.DefaultSnapshotTimeout, "with --csi-snapshots: how long to wait for the snapshot, the clone and its pod")
		flagRange(fl, 1, unbounded, "snapshot-timeout")
	} else {
		fl.BoolVar(&f.volumes, "volumes", false, "also write the volume files in the snapshot back into the restored claims' volumes on this node, before workloads are created")
	}
	fl.StringVar(&f.node.Node, "node", "", "this node's `name`, to pick the volumes it has (default $NODE_NAME; empty: every node, for single-node clusters)")
	fl.StringVar(&f.node.NodeRoot, "node-root", "", "where the node's root filesystem is mounted here (the agent DaemonSet mounts it at /host; default /)")
	fl.StringVar(&f.node.KubeletDir, "kubelet-dir", volume.DefaultKubeletDir, "the kubelet's directory on the node (CSI volumes are under its pods/)")
	fl.IntVar(&f.node.Jobs, "volume-jobs", volume.DefaultJobs, "read or write this many files of a volume at once")
	flagRange(fl, 1, 1000, "volume-jobs")
}

// kubeNode is the node of the flags: --node, else $NODE_NAME.
func (a *App) kubeNode(f *kubeVolumeFlags) app.KubernetesNode {
	node := f.node
	if node.Node == "" {
		node.Node = a.Getenv("NODE_NAME")
	}
	return node
}

// kubeBackupFlags are the flags of bunker backup kubernetes.
type kubeBackupFlags struct {
	conn           kubeConnFlags
	filt           kubeFilterFlags
	vf             kubeVolumeFlags
	sf             sourceFlags
	dbSpecs, hooks []string
	annotations    bool
	name           string
	workers        int
}

func (f *kubeBackupFlags) add(cmd *cobra.Command) {
	f.conn.add(cmd)
	f.filt.add(cmd)
	f.sf.add(cmd, "")
	fl := cmd.Flags()
	fl.StringVar(&f.name, "cluster-name", "", "name the cluster in the snapshot path (default: the kubeconfig's cluster name)")
	fl.IntVarP(&f.workers, "jobs", "j", 8, "list this many resources at once")
	flagRange(fl, 1, 1000, "jobs")
	f.vf.add(cmd, true)
	fl.StringArrayVar(&f.hooks, "exec-hook", nil, "run a command in a pod before the backup: `ns/pod[:container]=command args` (repeatable; pods' "+volume.HookAnnotation(volume.PhasePre, "command")+" annotations run too)")
	fl.BoolVar(&f.annotations, "annotation-hooks", true, "run the pre and post hooks that pods of the selected namespaces declare in annotations")
	fl.StringArrayVar(&f.dbSpecs, "database", nil, "first take a consistent logical backup of a database in the cluster through its Service: `postgres:NS/SERVICE[:PORT][,user=U][,secret=NAME][,key=KEY][,db=NAME]` (password from that Secret; repeatable)")
}

// request is the backup request of the flags, on cluster cfg; a hook
// without a phase runs before the backup.
func (f *kubeBackupFlags) request(a *App, cfg *rest.Config, cluster string) (app.KubernetesBackup, error) {
	if f.name != "" {
		cluster = f.name
	}
	req := app.KubernetesBackup{Config: cfg, Cluster: cluster, Tags: f.sf.tags, Host: f.sf.hostname(),
		Volumes: f.vf.volumes, Node: a.kubeNode(&f.vf), AnnotationHooks: f.annotations,
		Options: kube.BackupOptions{Filter: f.filt.Filter, LabelSelector: f.filt.selector,
			ClusterResources: f.filt.cluster, Concurrency: f.workers}}
	for _, s := range f.dbSpecs {
		d, err := kube.ParseDatabase(s)
		if err != nil {
			return req, fmt.Errorf("--database: %w", err)
		}
		req.Databases = append(req.Databases, d)
	}
	for _, s := range f.hooks {
		hk, err := volume.ParseHook(s)
		if err != nil {
			return req, fmt.Errorf("--exec-hook: %w", err)
		}
		if hk.Phase == "" {
			hk.Phase = volume.PhasePre
		}
		req.Hooks = append(req.Hooks, hk)
	}
	if a.g.verbose > 0 {
		req.ToolStderr = a.Stderr
	}
	return req, nil
}

func (a *App) kubeBackupCommand() *cobra.Command {
	var f kubeBackupFlags
	cmd := &cobra.Command{
		Use:   "kubernetes",
		Short: "Back up a Kubernetes cluster's objects (every API resource, including custom resources)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, cluster, err := a.kubeConfig(&f.conn)
			if err != nil {
				return err
			}
			req, err := f.request(a, cfg, cluster)
			if err != nil {
				return err
			}
			return a.kubeBackup(cmd.Context(), req)
		},
	}
	f.add(cmd)
	return cmd
}

// kubeRestoreFlags are the flags of bunker restore kubernetes.
type kubeRestoreFlags struct {
	conn           kubeConnFlags
	filt           kubeFilterFlags
	vf             kubeVolumeFlags
	opts           kube.RestoreOptions
	mapping, hosts []string
	modFile        string
	volumesOnly    bool
}

func (f *kubeRestoreFlags) add(cmd *cobra.Command) {
	f.conn.add(cmd)
	f.filt.add(cmd)
	fl, o := cmd.Flags(), &f.opts
	fl.StringSliceVar(&f.mapping, "namespace-mapping", nil, "restore namespace old into new (`old=new`, comma separated or repeated)")
	fl.StringVar(&o.Existing, "existing", kube.ExistingSkip, "an object that exists: skip (leave it) or update (replace it with the backup's)")
	fl.StringVar(&f.modFile, "modifiers", "", "apply the resource modifiers in this YAML `file`")
	fl.StringSliceVar(&o.Privileged, "privileged", nil, "also restore these privilege-granting `objects`: clusterroles, clusterrolebindings, webhook configurations, admission policies, apiservices, CRDs with conversion webhooks, pod-security-labels (of namespaces), or all; left out, they are skipped and namespaces keep the target's Pod Security labels")
	fl.BoolVar(&o.DryRun, "dry-run", false, "change nothing; list what would be created or updated")
	fl.IntVarP(&o.Concurrency, "jobs", "j", 8, "apply this many objects at once")
	flagRange(fl, 1, 1000, "jobs")
	fl.StringArrayVar(&f.hosts, "host", nil, "with latest: only snapshots of this `host`")
	fl.DurationVar(&o.CRDTimeout, "crd-timeout", time.Minute, "how long to wait for restored CustomResourceDefinitions to be served")
	f.vf.add(cmd, false)
	fl.BoolVar(&f.volumesOnly, "volumes-only", false, "restore no objects, only write the volume files back into the claims' volumes on this node (e.g. once CSI volumes are mounted)")
}

// options are the restore options of the flags, with --modifiers read.
func (f *kubeRestoreFlags) options() (kube.RestoreOptions, error) {
	opts := f.opts
	opts.Filter, opts.LabelSelector, opts.ClusterResources = f.filt.Filter, f.filt.selector, f.filt.cluster
	var err error
	if opts.NamespaceMapping, err = kube.ParseMapping(f.mapping); err != nil {
		return opts, err
	}
	if f.modFile != "" {
		b, err := os.ReadFile(f.modFile)
		if err != nil {
			return opts, fmt.Errorf("--modifiers: %w", err)
		}
		if opts.Modifiers, err = kube.ParseModifiers(b); err != nil {
			return opts, fmt.Errorf("--modifiers %s: %w", f.modFile, err)
		}
	}
	return opts, nil
}

func (a *App) kubeRestoreCommand() *cobra.Command {
	var f kubeRestoreFlags
	cmd := &cobra.Command{
		Use:   "kubernetes SNAPSHOT",
		Short: "Restore Kubernetes objects from a snapshot, in dependency order",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options()
			if err != nil {
				return err
			}
			if err := opts.Validate(); err != nil {
				return err
			}
			req := app.KubernetesRestore{Snapshot: args[0], Filter: snapshot.Filter{Hosts: f.hosts}, Options: opts,
				Volumes: f.vf.volumes, VolumesOnly: f.volumesOnly, Node: a.kubeNode(&f.vf)}
			if req.Config, _, err = a.kubeConfig(&f.conn); err != nil {
				return err
			}
			return a.kubeRestore(cmd.Context(), req)
		},
	}
	f.add(cmd)
	return cmd
}

// kubeBackup runs the Kubernetes backup use case on -r and prints its
// summary.
func (a *App) kubeBackup(ctx context.Context, req app.KubernetesBackup) error {
	if err := req.Validate(); err != nil {
		return err
	}
	c, repo, err := a.coreRepo(ctx)
	if err != nil {
		return err
	}
	req.Repo = repo
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
	c, repo, err := a.coreRepo(ctx)
	if err != nil {
		return err
	}
	req.Repo = repo
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

func (a *App) printKubeResult(res kube.Result, dryRun bool) {
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "object", "group": res.Group, "resource": res.Resource,
			"namespace": res.Namespace, "name": res.Name, "action": res.Action, "reason": res.Reason})
		return
	}
	line := fmt.Sprintf("%-12s %s", res.Action, res.Object())
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
