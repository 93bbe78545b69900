package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// kubeVolumeFlags say where this node's volumes are and how to read them.
type kubeVolumeFlags struct {
	volumes      bool
	node         string
	nodeRoot     string
	kubeletDir   string
	csiSnapshots bool
	snapClass    string
	moverImage   string
	snapTimeout  time.Duration
	jobs         int
}

func (f *kubeVolumeFlags) add(cmd *cobra.Command, backup bool) {
	fl := cmd.Flags()
	if backup {
		fl.BoolVar(&f.volumes, "volumes", false, "also back up the files of persistent volume claims that this node can read, into volumes/<ns>/<claim>/")
		fl.BoolVar(&f.csiSnapshots, "csi-snapshots", false, "with --volumes: read CSI volumes from a VolumeSnapshot clone instead of the live mount")
		fl.StringVar(&f.snapClass, "snapshot-class", "", "with --csi-snapshots: the VolumeSnapshotClass (default: the driver's default class)")
		fl.StringVar(&f.moverImage, "mover-image", "", "with --csi-snapshots: the image of the pod that mounts the clone (default "+volume.DefaultMoverImage+")")
		fl.DurationVar(&f.snapTimeout, "snapshot-timeout", volume.DefaultSnapshotTimeout, "with --csi-snapshots: how long to wait for the snapshot, the clone and its pod")
		flagRange(fl, 1, unbounded, "snapshot-timeout")
	} else {
		fl.BoolVar(&f.volumes, "volumes", false, "also write the volume files in the snapshot back into the restored claims' volumes on this node, before workloads are created")
	}
	fl.StringVar(&f.node, "node", "", "this node's `name`, to pick the volumes it has (default $NODE_NAME; empty: every node, for single-node clusters)")
	fl.StringVar(&f.nodeRoot, "node-root", "", "where the node's root filesystem is mounted here (the agent DaemonSet mounts it at /host; default /)")
	fl.StringVar(&f.kubeletDir, "kubelet-dir", volume.DefaultKubeletDir, "the kubelet's directory on the node (CSI volumes are under its pods/)")
	fl.IntVar(&f.jobs, "volume-jobs", volume.DefaultJobs, "read or write this many files of a volume at once")
	flagRange(fl, 1, 1000, "volume-jobs")
}

func (a *App) findOptions(f *kubeVolumeFlags, ns func(string) bool) volume.FindOptions {
	node := f.node
	if node == "" {
		node = a.Getenv("NODE_NAME")
	}
	return volume.FindOptions{Node: node, NodeRoot: f.nodeRoot, KubeletDir: f.kubeletDir, Namespace: ns}
}

// kubeHooks are the exec hooks of one backup.
type kubeHooks struct {
	flags       []string // --exec-hook
	annotations bool     // pod annotations
}

// kubeVolumeWork is the volume and hook part of one backup.
type kubeVolumeWork struct {
	cfg   *rest.Config
	cs    kubernetes.Interface
	dyn   dynamic.Interface
	find  volume.FindOptions
	flags kubeVolumeFlags
	hooks []volume.Hook // pre and post, from flags
	// annotations adds the hooks pods declare.
	annotations bool
}

func (a *App) newKubeVolumeWork(cfg *rest.Config, clients *kube.Clients, f kubeVolumeFlags, h kubeHooks, filter *kube.Filter) (*kubeVolumeWork, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	w := &kubeVolumeWork{cfg: cfg, cs: cs, dyn: clients.Dynamic, flags: f, find: a.findOptions(&f, filter.Namespace), annotations: h.annotations}
	if err := w.find.Validate(); err != nil {
		return nil, err
	}
	for _, s := range h.flags {
		hk, err := volume.ParseHook(s)
		if err != nil {
			return nil, fmt.Errorf("--exec-hook: %w", err)
		}
		if hk.Phase == "" {
			hk.Phase = volume.PhasePre
		}
		w.hooks = append(w.hooks, hk)
	}
	return w, nil
}

// kubePreHooks runs the pre hooks (flags, then pod annotations) and returns
// the post hooks to run whatever happens next.
func (a *App) kubePreHooks(ctx context.Context, w *kubeVolumeWork) ([]volume.Hook, error) {
	hooks := w.hooks
	if w.annotations {
		ann, err := volume.HooksFromPods(ctx, w.cs, w.find.Namespace)
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, ann...)
	}
	var pre, post []volume.Hook
	for _, h := range hooks {
		if h.Phase == volume.PhasePost {
			post = append(post, h)
		} else {
			pre = append(pre, h)
		}
	}
	warn := func(s string) { a.out.warnf("%s", s) }
	for _, h := range pre {
		a.out.infof("hook: %s/%s: %v", h.Namespace, h.Pod, h.Command)
	}
	if err := volume.RunHooks(ctx, w.cfg, w.cs, pre, warn); err != nil {
		// Thaw what the hooks that ran froze.
		a.kubePostHooks(w, post)
		return nil, fmt.Errorf("pre-backup hook: %w", err)
	}
	return post, nil
}

// kubePostHooks runs post hooks with their own time budget: they must run
// even when the backup was cancelled.
func (a *App) kubePostHooks(w *kubeVolumeWork, post []volume.Hook) {
	if len(post) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := volume.RunHooks(ctx, w.cfg, w.cs, post, func(s string) { a.out.warnf("%s", s) }); err != nil {
		a.out.warnf("post-backup hook: %v", err)
	}
}

// kubeBackupVolumes writes the files of every volume this node has into
// volumes/<ns>/<claim>/ and returns "<ns>/<claim>" of each.
func (a *App) kubeBackupVolumes(ctx context.Context, w *kubeVolumeWork, sink source.Sink) ([]string, error) {
	vols, skipped, err := volume.Find(ctx, w.cs, w.find)
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		a.out.warnf("volume of claim %s/%s not backed up: %s", s.Namespace, s.PVC, s.Reason)
	}
	warn := func(s string) { a.out.warnf("%s", s) }
	var done []string
	for _, v := range vols {
		dir := path.Join("volumes", v.Namespace, v.PVC)
		src := v
		var clone *volume.Clone
		if w.flags.csiSnapshots && v.Kind == volume.KindCSI {
			c, err := volume.SnapshotClone(ctx, w.cs, w.dyn, v.Namespace, v.PVC, volume.SnapshotOptions{
				Class: w.flags.snapClass, Node: w.find.Node, Image: w.flags.moverImage, Timeout: w.flags.snapTimeout, Warn: warn,
			}, w.find)
			if err != nil {
				return nil, fmt.Errorf("snapshot of claim %s/%s: %w", v.Namespace, v.PVC, err)
			}
			clone, src = c, c.Volume
		}
		a.out.infof("volume %s/%s (%s, %s)", v.Namespace, v.PVC, v.Kind, src.Path)
		st, err := volume.Save(ctx, sink, dir, src.Path, volume.FileOptions{Jobs: w.flags.jobs, Warn: warn})
		if clone != nil {
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if cerr := clone.Cleanup(cctx); cerr != nil {
				a.out.warnf("snapshot clone of %s/%s: cleanup: %v", v.Namespace, v.PVC, cerr)
			}
			cancel()
		}
		if err != nil {
			return nil, fmt.Errorf("volume of claim %s/%s: %w", v.Namespace, v.PVC, err)
		}
		a.out.infof("volume %s/%s: %d files, %s", v.Namespace, v.PVC, st.Files, formatBytes(st.Bytes))
		done = append(done, v.Namespace+"/"+v.PVC)
	}
	sort.Strings(done)
	return done, nil
}

// kubeRestoreVolumes writes the volume files of tree back into the
// volumes of the restored claims on this node. It returns how many
// claims' data could not be written.
func (a *App) kubeRestoreVolumes(ctx context.Context, tree source.Tree, cfg *rest.Config, f kubeVolumeFlags, mapping map[string]string, filter *kube.Filter) (int, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return 0, fmt.Errorf("kubernetes client: %w", err)
	}
	type claim struct{ ns, pvc, target string }
	var claims []claim
	nss, err := tree.List(ctx, "volumes")
	if errors.Is(err, fs.ErrNotExist) {
		a.out.warnf("--volumes: the snapshot holds no volume data")
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	targets := map[string]bool{}
	for _, ns := range nss {
		if ns.Type != source.TypeDir || !filter.Namespace(ns.Name) {
			continue
		}
		pvcs, err := tree.List(ctx, path.Join("volumes", ns.Name))
		if err != nil {
			return 0, err
		}
		to := ns.Name
		if m, ok := mapping[to]; ok {
			to = m
		}
		targets[to] = true
		for _, p := range pvcs {
			if p.Type == source.TypeDir {
				claims = append(claims, claim{ns.Name, p.Name, to})
			}
		}
	}
	fo := a.findOptions(&f, func(ns string) bool { return targets[ns] })
	fo.PreBound = true
	if err := fo.Validate(); err != nil {
		return 0, err
	}
	vols, skipped, err := volume.Find(ctx, cs, fo)
	if err != nil {
		return 0, err
	}
	where := map[string]volume.Volume{}
	for _, v := range vols {
		where[v.Namespace+"/"+v.PVC] = v
	}
	why := map[string]string{}
	for _, s := range skipped {
		why[s.Namespace+"/"+s.PVC] = s.Reason
	}
	failed := 0
	warn := func(s string) { a.out.warnf("%s", s) }
	for _, c := range claims {
		key := c.target + "/" + c.pvc
		v, ok := where[key]
		if !ok {
			reason := why[key]
			if reason == "" {
				reason = "no such claim in the cluster"
			}
			a.out.warnf("volume data of claim %s not restored: %s", key, reason)
			failed++
			continue
		}
		st, err := volume.Load(ctx, tree, path.Join("volumes", c.ns, c.pvc), v.Path, volume.FileOptions{Jobs: f.jobs, Warn: warn})
		if err != nil {
			if ctx.Err() != nil {
				return failed, ctx.Err()
			}
			a.out.warnf("volume data of claim %s: %v", key, err)
			failed++
			continue
		}
		a.out.textf("volume %s restored into %s: %d files, %s", key, v.Path, st.Files, formatBytes(st.Bytes))
	}
	return failed, nil
}
