package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// ManifestName is the file at the root of the tree that describes the
// backup.
const ManifestName = "kubernetes.json"

// TemporaryLabel marks objects Bunker makes for the length of one backup
// (VolumeSnapshots, their clones and mover pods); they are never backed
// up.
const TemporaryLabel = "backup.bunker.dev/temporary"

// ManifestVersion is the version of the tree layout this package writes.
const ManifestVersion = 1

// Manifest describes one Kubernetes backup. It holds no time, so that an
// unchanged cluster gives an identical file.
type Manifest struct {
	Version    int        `json:"version"`
	Server     string     `json:"server,omitempty"` // the API server's version
	Resources  []Resource `json:"resources"`        // with objects
	Namespaces []string   `json:"namespaces"`
	Objects    int        `json:"objects"`
	// Volumes lists the claims whose files are under volumes/ and
	// Databases the services whose databases are under databases/
	// ("<ns>/<name>"), both added by the caller.
	Volumes   []string `json:"volumes,omitempty"`
	Databases []string `json:"databases,omitempty"`
}

// Cluster-scoped selection modes.
const (
	ClusterAuto = "auto" // all when no namespace filter, else only what selected objects need
	ClusterOn   = "on"
	ClusterOff  = "off"
)

// BackupOptions configure a backup. The zero value backs up everything.
type BackupOptions struct {
	Filter Filter
	// LabelSelector selects objects (not the Namespace objects of the
	// selected namespaces, which are always kept).
	LabelSelector string
	// ClusterResources is ClusterAuto (default), ClusterOn or ClusterOff.
	// In auto mode with a namespace filter, the cluster-scoped objects
	// the selected ones need are kept: the CustomResourceDefinitions of
	// their custom resources and the PersistentVolumes of their claims.
	ClusterResources string
	// Concurrency is the number of resources listed at once (default 8).
	Concurrency int
	// PageSize is the list page size (default 500).
	PageSize int64
	// Warn receives problems that do not fail the backup.
	Warn func(string)
}

// Validate checks the options.
func (o *BackupOptions) Validate() error {
	return validateSelection(&o.Filter, o.LabelSelector, o.ClusterResources)
}

// validateSelection checks what backups and restores select by.
func validateSelection(f *Filter, selector, cluster string) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if _, err := labels.Parse(selector); err != nil {
		return fmt.Errorf("label selector %q: %w", selector, err)
	}
	switch cluster {
	case "", ClusterAuto, ClusterOn, ClusterOff:
	default:
		return fmt.Errorf("cluster resources %q: want auto, on or off", cluster)
	}
	return nil
}

// dirTime is the modification time of every directory in the tree: fixed,
// so unchanged directories store the same tree in every backup.
var dirTime = time.Unix(0, 0).UTC()

// Clients are the API clients a backup or restore uses.
type Clients struct {
	Discovery discovery.DiscoveryInterface
	Dynamic   dynamic.Interface
}

// NewClients builds the clients for cfg.
func NewClients(cfg *rest.Config) (*Clients, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Clients{Discovery: dc, Dynamic: dyn}, nil
}

type backup struct {
	c       *Clients
	o       BackupOptions
	sink    source.Sink
	status  map[string]bool
	objects atomic.Int64

	mu     sync.Mutex
	dirs   map[string]bool
	counts map[string]int  // resource.group → objects
	crds   map[string]bool // CRD names needed by selected custom resources
	pvs    map[string]bool // PVs bound to selected claims
	selNS  map[string]bool // selected namespaces
}

// Backup writes the selected objects into sink and returns the manifest
// it wrote. Any error fails the backup; problems that only leave
// something out (a group whose discovery failed, a resource the
// credentials may not list) go to o.Warn.
func Backup(ctx context.Context, c *Clients, sink source.Sink, o BackupOptions) (*Manifest, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.ClusterResources == "" {
		o.ClusterResources = ClusterAuto
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	if o.Warn == nil {
		o.Warn = func(string) {}
	}
	b := &backup{c: c, o: o, sink: sink, dirs: map[string]bool{}, counts: map[string]int{},
		crds: map[string]bool{}, pvs: map[string]bool{}, selNS: map[string]bool{}}
	all, err := Discover(ctx, c.Discovery, o.Warn)
	if err != nil {
		return nil, err
	}
	var resources []Resource
	for _, r := range all {
		if b.o.Filter.Wanted(r) {
			resources = append(resources, r)
		}
	}
	b.status = statusSubresources(ctx, c.Dynamic)

	nsObjs, err := b.namespaces(ctx)
	if err != nil {
		return nil, err
	}
	allCluster := o.ClusterResources == ClusterOn || o.ClusterResources == ClusterAuto && !o.Filter.NamespacesFiltered()

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Concurrency)
	for _, r := range resources {
		if !r.Namespaced && (!allCluster || r.GroupResource() == "namespaces") {
			continue
		}
		g.Go(func() error { return b.listResource(gctx, r) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// The Namespace objects of the selected namespaces, always.
	nsRes := Resource{Version: "v1", Resource: "namespaces", Kind: "Namespace"}
	for _, ns := range nsObjs {
		if err := b.writeObject(ctx, nsRes, ns.Object); err != nil {
			return nil, err
		}
	}
	if !allCluster && o.ClusterResources != ClusterOff {
		if err := b.related(ctx, resources); err != nil {
			return nil, err
		}
	}

	m := &Manifest{Version: ManifestVersion, Objects: int(b.objects.Load())}
	if v, err := c.Discovery.ServerVersion(); err == nil {
		m.Server = v.GitVersion
	}
	for _, r := range append(resources, nsRes) {
		if n := b.counts[r.GroupResource()]; n > 0 && !slices.ContainsFunc(m.Resources, func(x Resource) bool { return x.GroupResource() == r.GroupResource() }) {
			r.Count = n
			m.Resources = append(m.Resources, r)
		}
	}
	for ns := range b.selNS {
		m.Namespaces = append(m.Namespaces, ns)
	}
	sort.Strings(m.Namespaces)
	for d := range b.dirs {
		if err := sink.Mkdir(d, &source.Meta{Mode: 0o700, ModTime: dirTime}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// WriteManifest writes m as kubernetes.json.
func WriteManifest(ctx context.Context, sink source.Sink, m *Manifest) error {
	buf, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return source.WriteBytes(ctx, sink, ManifestName, append(buf, '\n'), &source.Meta{Mode: 0o600, ModTime: dirTime})
}

// namespaces returns the Namespace objects of the selected namespaces
// and records their names.
func (b *backup) namespaces(ctx context.Context) ([]unstructured.Unstructured, error) {
	nsc := b.c.Dynamic.Resource(Resource{Version: "v1", Resource: "namespaces"}.gvr())
	var out []unstructured.Unstructured
	list, err := nsc.List(ctx, metav1.ListOptions{})
	if err != nil {
		lit := b.o.Filter.LiteralNamespaces()
		if !apierrors.IsForbidden(err) || lit == nil {
			return nil, fmt.Errorf("list namespaces: %w", err)
		}
		// Allowed into some namespaces only: fetch the named ones.
		for _, ns := range lit {
			obj, err := nsc.Get(ctx, ns, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsForbidden(err) {
					b.selNS[ns] = true
					continue
				}
				return nil, fmt.Errorf("get namespace %s: %w", ns, err)
			}
			out = append(out, *obj)
			b.selNS[ns] = true
		}
		return out, nil
	}
	for _, ns := range list.Items {
		if b.o.Filter.Namespace(ns.GetName()) {
			out = append(out, ns)
			b.selNS[ns.GetName()] = true
		}
	}
	for _, ns := range b.o.Filter.LiteralNamespaces() {
		if !b.selNS[ns] {
			b.o.Warn(fmt.Sprintf("namespace %s does not exist", ns))
		}
	}
	return out, nil
}

// listResource lists every selected object of r and writes it.
func (b *backup) listResource(ctx context.Context, r Resource) error {
	rc := b.c.Dynamic.Resource(r.gvr())
	var scopes []dynamic.ResourceInterface
	if lit := b.o.Filter.LiteralNamespaces(); r.Namespaced && lit != nil {
		for _, ns := range lit {
			if b.selNS[ns] {
				scopes = append(scopes, rc.Namespace(ns))
			}
		}
	} else {
		scopes = []dynamic.ResourceInterface{rc}
	}
	for _, sc := range scopes {
		opts := metav1.ListOptions{LabelSelector: b.o.LabelSelector, Limit: b.o.PageSize}
		for {
			list, err := sc.List(ctx, opts)
			if err != nil {
				if apierrors.IsForbidden(err) || apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
					b.o.Warn(fmt.Sprintf("%s skipped: %v", r.GroupResource(), err))
					return nil
				}
				return fmt.Errorf("list %s: %w", r.GroupResource(), err)
			}
			for i := range list.Items {
				obj := list.Items[i].Object
				if r.Namespaced && !b.selNS[list.Items[i].GetNamespace()] {
					continue
				}
				if err := b.writeObject(ctx, r, obj); err != nil {
					return err
				}
			}
			if list.GetContinue() == "" {
				break
			}
			opts.Continue = list.GetContinue()
		}
	}
	return nil
}

// ObjectPath is the path of an object's file in the tree.
func ObjectPath(group, resource, namespace, name string) string {
	if namespace == "" {
		return path.Join("cluster", dirGroup(group), resource, name+".json")
	}
	return path.Join("namespaces", namespace, dirGroup(group), resource, name+".json")
}

func (b *backup) writeObject(ctx context.Context, r Resource, obj map[string]any) error {
	u := unstructured.Unstructured{Object: obj}
	if u.GetLabels()[TemporaryLabel] == "true" {
		return nil
	}
	name, ns := u.GetName(), u.GetNamespace()
	if !r.Namespaced {
		ns = ""
	}
	gr := r.GroupResource()
	if gr == "persistentvolumeclaims" {
		if v := nestedString(obj, "spec", "volumeName"); v != "" {
			b.mu.Lock()
			b.pvs[v] = true
			b.mu.Unlock()
		}
	}
	// A custom resource without a status subresource keeps its status:
	// it is part of the object.
	statusSub, custom := b.status[gr]
	created := Clean(obj, r.Group, r.Resource, custom && !statusSub)
	buf, err := json.MarshalIndent(obj, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s %s/%s: %w", gr, ns, name, err)
	}
	p := ObjectPath(r.Group, r.Resource, ns, name)
	if created.IsZero() {
		created = dirTime
	}
	if err := source.WriteBytes(ctx, b.sink, p, append(buf, '\n'), &source.Meta{Mode: 0o600, ModTime: created}); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	b.objects.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.counts[gr]++
	if r.Group != "" && r.Group != "apiextensions.k8s.io" {
		b.crds[gr] = true // checked against the CRDs that exist in related
	}
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if b.dirs[d] {
			break
		}
		b.dirs[d] = true
	}
	return nil
}

// related writes the cluster-scoped objects the selected objects need:
// the CRDs of their custom resources and the PVs of their claims.
func (b *backup) related(ctx context.Context, resources []Resource) error {
	type need struct {
		r     Resource
		names []string
	}
	var want []need
	for _, r := range resources {
		var names []string
		switch r.GroupResource() {
		case "customresourcedefinitions.apiextensions.k8s.io":
			for name := range b.crds {
				if _, ok := b.status[name]; ok { // a CRD by that name exists
					names = append(names, name)
				}
			}
		case "persistentvolumes":
			for name := range b.pvs {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		want = append(want, need{r, names})
	}
	for _, w := range want {
		r := w.r
		for _, name := range w.names {
			obj, err := b.c.Dynamic.Resource(r.gvr()).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
					b.o.Warn(fmt.Sprintf("%s %s skipped: %v", r.GroupResource(), name, err))
					continue
				}
				return fmt.Errorf("get %s %s: %w", r.GroupResource(), name, err)
			}
			if err := b.writeObject(ctx, r, obj.Object); err != nil {
				return err
			}
		}
	}
	return nil
}
