package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/bunkerbackup/bunker/internal/app/streamtree"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// KubernetesRestore is one restore of a Kubernetes backup into the
// cluster of Config (it may be another cluster than the one backed up).
type KubernetesRestore struct {
	Repo Repo
	// Snapshot is "latest" (the newest Kubernetes backup that Filter
	// accepts), a snapshot ID or a unique prefix of one.
	Snapshot string
	Filter   snapshot.Filter
	// Config reaches the API server.
	Config *rest.Config
	// Options select and shape what is restored; their Report receives
	// each object's outcome as it comes.
	Options kube.RestoreOptions
	// Volumes writes the snapshot's volume files back into the restored
	// claims' volumes on Node, after the claims and before workloads;
	// VolumesOnly does only that, restoring no objects.
	Volumes, VolumesOnly bool
	Node                 KubernetesNode
	// VolumeRestored, when set, is told of each claim whose files were
	// written back.
	VolumeRestored func(KubernetesVolumeRestored)
}

// KubernetesVolumeRestored is a claim whose volume files were written
// back.
type KubernetesVolumeRestored struct {
	Claim string // "<ns>/<claim>" in the target cluster
	Path  string // the volume's directory on this machine
	Files int64
	Bytes int64
}

// KubernetesRestoreResult is what a restore did. With VolumesOnly, only
// Failed counts (the claims whose files could not be written).
type KubernetesRestoreResult struct {
	Snapshot *snapshot.Snapshot
	// Summary counts objects; Failed also counts the claims whose volume
	// files could not be written.
	Summary  kube.Summary
	Duration time.Duration
}

// Validate says what in x is wrong before anything is opened.
func (x *KubernetesRestore) Validate() error {
	if err := x.Options.Validate(); err != nil {
		return err
	}
	if !x.Volumes && !x.VolumesOnly {
		return nil
	}
	if x.Options.DryRun {
		return errors.New("--volumes cannot be combined with --dry-run")
	}
	return x.Node.FindOptions(nil).Validate()
}

// RunKubernetesRestore restores a Kubernetes backup's objects in
// dependency order (and, when asked, its volume files). Objects or
// volumes that failed are counted in the result, returned with a
// *PartialError.
func (a *App) RunKubernetesRestore(ctx context.Context, x KubernetesRestore) (*KubernetesRestoreResult, error) {
	if err := x.Validate(); err != nil {
		return nil, err
	}
	if x.Config == nil {
		return nil, errors.New("kubernetes restore: no cluster configuration")
	}
	r, err := a.OpenIndexed(ctx, x.Repo)
	if err != nil {
		return nil, err
	}
	sn, err := a.kubeSnapshot(ctx, r, x.Snapshot, x.Filter)
	if err != nil {
		return nil, err
	}
	clients, err := kube.NewClients(x.Config)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	tree := streamtree.NewReader(r, sn.Tree)
	o := x.Options
	volFailed := 0
	if x.Volumes || x.VolumesOnly {
		o.BeforeWorkloads = func(ctx context.Context) error {
			var err error
			volFailed, err = a.kubeRestoreVolumes(ctx, tree, &x, o.NamespaceMapping, &o.Filter)
			return err
		}
	}
	res := &KubernetesRestoreResult{Snapshot: sn}
	if x.VolumesOnly {
		if err := o.BeforeWorkloads(ctx); err != nil {
			return nil, err
		}
		res.Summary.Failed = volFailed
	} else {
		sum, err := kube.Restore(ctx, clients, tree, o)
		if err != nil {
			return nil, fmt.Errorf("restore snapshot %s: %w", sn.ShortID(), err)
		}
		res.Summary = *sum
		res.Summary.Failed += volFailed
	}
	res.Duration = time.Since(start)
	if res.Summary.Partial() {
		return res, &PartialError{Msg: fmt.Sprintf("%d objects or volumes could not be restored (listed above)", res.Summary.Failed)}
	}
	return res, nil
}

// kubeSnapshot finds the Kubernetes backup ref among r's snapshots:
// "latest" is the newest one passing f.
func (a *App) kubeSnapshot(ctx context.Context, r *repository.Repository, ref string, f snapshot.Filter) (*snapshot.Snapshot, error) {
	all, err := a.LoadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	return findAccepted(all, ref, f, sourceCheck(KubernetesSource))
}

// kubeRestoreVolumes writes the volume files of tree back into the
// volumes of the restored claims on this node. It returns how many
// claims' data could not be written.
func (a *App) kubeRestoreVolumes(ctx context.Context, tree source.Tree, x *KubernetesRestore, mapping map[string]string, filter *kube.Filter) (int, error) {
	cs, err := kubernetes.NewForConfig(x.Config)
	if err != nil {
		return 0, fmt.Errorf("kubernetes client: %w", err)
	}
	type claim struct{ ns, pvc, target string }
	var claims []claim
	nss, err := tree.List(ctx, "volumes")
	if errors.Is(err, fs.ErrNotExist) {
		a.warnf("--volumes: the snapshot holds no volume data")
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
	fo := x.Node.FindOptions(func(ns string) bool { return targets[ns] })
	fo.PreBound = true
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
	warn := func(s string) { a.warnf("%s", s) }
	for _, c := range claims {
		key := c.target + "/" + c.pvc
		v, ok := where[key]
		if !ok {
			reason := why[key]
			if reason == "" {
				reason = "no such claim in the cluster"
			}
			a.warnf("volume data of claim %s not restored: %s", key, reason)
			failed++
			continue
		}
		st, err := volume.Load(ctx, tree, path.Join("volumes", c.ns, c.pvc), v.Path, volume.FileOptions{Jobs: x.Node.Jobs, Warn: warn})
		if err != nil {
			if ctx.Err() != nil {
				return failed, ctx.Err()
			}
			a.warnf("volume data of claim %s: %v", key, err)
			failed++
			continue
		}
		if x.VolumeRestored != nil {
			x.VolumeRestored(KubernetesVolumeRestored{Claim: key, Path: v.Path, Files: st.Files, Bytes: st.Bytes})
		}
	}
	return failed, nil
}
