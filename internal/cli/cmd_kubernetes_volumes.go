package cli

import (
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
	"github.com/spf13/cobra"
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

// kubeNode is the node of the flags: --node, else $NODE_NAME.
func (a *App) kubeNode(f *kubeVolumeFlags) app.KubernetesNode {
	node := f.node
	if node == "" {
		node = a.Getenv("NODE_NAME")
	}
	return app.KubernetesNode{Node: node, NodeRoot: f.nodeRoot, KubeletDir: f.kubeletDir, CSISnapshots: f.csiSnapshots,
		SnapshotClass: f.snapClass, MoverImage: f.moverImage, SnapshotTimeout: f.snapTimeout, Jobs: f.jobs}
}

// kubeHooks are the exec hooks of one backup.
type kubeHooks struct {
	flags       []string // --exec-hook
	annotations bool     // pod annotations
}

// parse reads the --exec-hook values; a hook without a phase runs before
// the backup.
func (h *kubeHooks) parse() ([]volume.Hook, error) {
	var out []volume.Hook
	for _, s := range h.flags {
		hk, err := volume.ParseHook(s)
		if err != nil {
			return nil, fmt.Errorf("--exec-hook: %w", err)
		}
		if hk.Phase == "" {
			hk.Phase = volume.PhasePre
		}
		out = append(out, hk)
	}
	return out, nil
}
