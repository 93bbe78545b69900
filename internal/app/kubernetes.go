package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"sort"
	"strconv"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// KubernetesSource names Kubernetes backups (their metadata "source").
const KubernetesSource = "kubernetes"

// KubernetesPaths are the snapshot paths of a backup of cluster.
func KubernetesPaths(cluster string) []string { return []string{"/kubernetes/" + cluster} }

// KubernetesNode says where this node's volumes are and how to read and
// write them. The zero value is every node (a single-node cluster), the
// root filesystem at /, and the defaults of the volume package.
type KubernetesNode struct {
	// Node picks the volumes this node has ("": every node).
	Node string
	// NodeRoot is where the node's root filesystem is mounted here
	// ("": /).
	NodeRoot string
	// KubeletDir is the kubelet's directory on the node ("":
	// volume.DefaultKubeletDir).
	KubeletDir string
	// CSISnapshots reads CSI volumes from a VolumeSnapshot clone, with
	// SnapshotClass ("": the driver's default), MoverImage ("":
	// volume.DefaultMoverImage) and SnapshotTimeout (0:
	// volume.DefaultSnapshotTimeout). Backups only.
	CSISnapshots    bool
	SnapshotClass   string
	MoverImage      string
	SnapshotTimeout time.Duration
	// Jobs is how many files of a volume are read or written at once
	// (0: volume.DefaultJobs).
	Jobs int
}

// FindOptions are the options of volume.Find for the claims of the
// namespaces ns selects (nil: all) on n.
func (n *KubernetesNode) FindOptions(ns func(string) bool) volume.FindOptions {
	return volume.FindOptions{Node: n.Node, NodeRoot: n.NodeRoot, KubeletDir: n.KubeletDir, Namespace: ns}
}

// KubernetesBackup is one backup of a cluster's objects, and with them,
// when asked, its databases (through their Services) and the files of
// the volumes this node can read.
type KubernetesBackup struct {
	Repo Repo
	// Config reaches the API server.
	Config *rest.Config
	// Cluster names the snapshot path /kubernetes/<cluster>.
	Cluster string
	// Options select what is backed up; Warn defaults to Events.
	Options kube.BackupOptions
	Tags    []string
	Host    string // default: this machine's name
	// Databases are backed up through their Services first, each into
	// databases/<ns>/<service>/.
	Databases []kube.Database
	// ToolStderr receives the database tools' diagnostics (nil: none).
	ToolStderr io.Writer
	// Volumes also backs up the files of the claims' volumes this node
	// can read, into volumes/<ns>/<claim>/.
	Volumes bool
	// Node is where this node's volumes are (and, for the hooks, which
	// namespaces are selected).
	Node KubernetesNode
	// Hooks run in pods: the pre hooks (PhasePre or none) before the
	// backup, the post hooks after it, whatever happens.
	Hooks []volume.Hook
	// AnnotationHooks also runs the hooks the pods of the selected
	// namespaces declare in annotations.
	AnnotationHooks bool
}

// Validate says what in b is wrong before anything is opened.
func (b *KubernetesBackup) Validate() error {
	if err := b.Options.Validate(); err != nil {
		return err
	}
	return b.Node.FindOptions(nil).Validate()
}

// RunKubernetesBackup backs up the cluster's objects (with the databases
// and volume files b asks for) into one snapshot, or saves nothing when
// anything fails. Its metadata counts the objects, namespaces and
// volumes.
func (a *App) RunKubernetesBackup(ctx context.Context, b KubernetesBackup) (*BackupResult, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	if b.Config == nil {
		return nil, errors.New("kubernetes backup: no cluster configuration")
	}
	clients, err := kube.NewClients(b.Config)
	if err != nil {
		return nil, err
	}
	opts := b.Options
	if opts.Warn == nil {
		opts.Warn = func(s string) { a.warnf("%s", s) }
	}
	return a.RunSourceBackup(ctx, SourceBackup{
		Repo: b.Repo, Source: KubernetesSource, Paths: KubernetesPaths(b.Cluster), Tags: b.Tags, Host: b.Host,
		Kind: snapshot.KindFull,
		Save: func(ctx context.Context, w source.Sink) (map[string]string, error) {
			vw, err := a.newKubeVolumeWork(&b, clients, &opts.Filter)
			if err != nil {
				return nil, err
			}
			post, err := a.kubePreHooks(ctx, vw)
			if err != nil {
				return nil, err
			}
			defer a.kubePostHooks(vw, post)
			var dbs []string
			for _, d := range b.Databases {
				if err := a.kubeDatabaseBackup(ctx, clients, w, d, b.ToolStderr); err != nil {
					return nil, err
				}
				dbs = append(dbs, d.Namespace+"/"+d.Service)
			}
			m, err := kube.Backup(ctx, clients, w, opts)
			if err != nil {
				return nil, err
			}
			m.Databases = dbs
			if b.Volumes {
				if m.Volumes, err = a.kubeBackupVolumes(ctx, vw, w); err != nil {
					return nil, err
				}
			}
			if err := kube.WriteManifest(ctx, w, m); err != nil {
				return nil, err
			}
			return map[string]string{
				"kubernetes_cluster": b.Cluster, "kubernetes_server": m.Server,
				"kubernetes_objects": strconv.Itoa(m.Objects), "kubernetes_namespaces": strconv.Itoa(len(m.Namespaces)),
				"kubernetes_volumes": strconv.Itoa(len(m.Volumes)),
			}, nil
		},
	})
}

// KubernetesVolumeBackup is the node agent's backup of the volume files
// on its node for one Backup: the claims of the selected namespaces and
// their volumes' files, no cluster-scoped objects.
type KubernetesVolumeBackup struct {
	Repo    Repo
	Config  *rest.Config
	Cluster string
	// IncludeNamespaces and ExcludeNamespaces select the claims.
	IncludeNamespaces, ExcludeNamespaces []string
	Tags                                 []string
	Host                                 string // default: this machine's name
	Node                                 KubernetesNode
}

// RunKubernetesVolumeBackup backs up the claims of the selected
// namespaces and the files of their volumes on b.Node into one snapshot,
// running the pods' annotation hooks around it.
func (a *App) RunKubernetesVolumeBackup(ctx context.Context, b KubernetesVolumeBackup) (*BackupResult, error) {
	return a.RunKubernetesBackup(ctx, KubernetesBackup{
		Repo: b.Repo, Config: b.Config, Cluster: b.Cluster, Tags: b.Tags, Host: b.Host,
		Options: kube.BackupOptions{Filter: kube.Filter{IncludeNamespaces: b.IncludeNamespaces, ExcludeNamespaces: b.ExcludeNamespaces,
			IncludeResources: []string{"persistentvolumeclaims"}}, ClusterResources: kube.ClusterOff},
		Volumes: true, Node: b.Node, AnnotationHooks: true,
	})
}

// kubeDatabaseBackup takes a logical backup of a database in the cluster,
// reached through its Service, with the password from a Secret.
func (a *App) kubeDatabaseBackup(ctx context.Context, c *kube.Clients, w source.Sink, d kube.Database, stderr io.Writer) error {
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
	pc, err := postgres.Open(postgres.Config{Conn: ci, Stderr: stderr, Getenv: a.getenv})
	if err != nil {
		return err
	}
	defer pc.Close()
	a.infof("backing up PostgreSQL %s/%s at %s", d.Namespace, d.Service, addr)
	if _, err := pc.BackupLogical(ctx, source.PrefixSink(w, d.Dir()), postgres.LogicalOptions{Databases: d.Databases}); err != nil {
		return fmt.Errorf("database %s/%s: %w", d.Namespace, d.Service, err)
	}
	return nil
}

// kubeVolumeWork is the volume and hook part of one backup.
type kubeVolumeWork struct {
	cfg  *rest.Config
	cs   kubernetes.Interface
	dyn  dynamic.Interface
	find volume.FindOptions
	node KubernetesNode
	// hooks are the request's; annotations adds the pods'.
	hooks       []volume.Hook
	annotations bool
}

func (a *App) newKubeVolumeWork(b *KubernetesBackup, clients *kube.Clients, filter *kube.Filter) (*kubeVolumeWork, error) {
	cs, err := kubernetes.NewForConfig(b.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &kubeVolumeWork{cfg: b.Config, cs: cs, dyn: clients.Dynamic, node: b.Node, find: b.Node.FindOptions(filter.Namespace),
		hooks: b.Hooks, annotations: b.AnnotationHooks}, nil
}

// kubePreHooks runs the pre hooks (the request's, then pod annotations')
// and returns the post hooks to run whatever happens next.
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
	for _, h := range pre {
		a.infof("hook: %s/%s: %v", h.Namespace, h.Pod, h.Command)
	}
	if err := volume.RunHooks(ctx, w.cfg, w.cs, pre, func(s string) { a.warnf("%s", s) }); err != nil {
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
	if err := volume.RunHooks(ctx, w.cfg, w.cs, post, func(s string) { a.warnf("%s", s) }); err != nil {
		a.warnf("post-backup hook: %v", err)
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
		a.warnf("volume of claim %s/%s not backed up: %s", s.Namespace, s.PVC, s.Reason)
	}
	warn := func(s string) { a.warnf("%s", s) }
	var done []string
	for _, v := range vols {
		dir := path.Join("volumes", v.Namespace, v.PVC)
		src := v
		var clone *volume.Clone
		if w.node.CSISnapshots && v.Kind == volume.KindCSI {
			c, err := volume.SnapshotClone(ctx, w.cs, w.dyn, v.Namespace, v.PVC, volume.SnapshotOptions{
				Class: w.node.SnapshotClass, Node: w.find.Node, Image: w.node.MoverImage, Timeout: w.node.SnapshotTimeout, Warn: warn,
			}, w.find)
			if err != nil {
				return nil, fmt.Errorf("snapshot of claim %s/%s: %w", v.Namespace, v.PVC, err)
			}
			clone, src = c, c.Volume
		}
		a.infof("volume %s/%s (%s, %s)", v.Namespace, v.PVC, v.Kind, src.Path)
		st, err := volume.Save(ctx, sink, dir, src.Path, volume.FileOptions{Jobs: w.node.Jobs, Warn: warn})
		if clone != nil {
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if cerr := clone.Cleanup(cctx); cerr != nil {
				a.warnf("snapshot clone of %s/%s: cleanup: %v", v.Namespace, v.PVC, cerr)
			}
			cancel()
		}
		if err != nil {
			return nil, fmt.Errorf("volume of claim %s/%s: %w", v.Namespace, v.PVC, err)
		}
		a.infof("volume %s/%s: %d files, %s", v.Namespace, v.PVC, st.Files, formatBytes(st.Bytes))
		done = append(done, v.Namespace+"/"+v.PVC)
	}
	sort.Strings(done)
	return done, nil
}
