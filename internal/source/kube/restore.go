package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// Existing-object policies.
const (
	ExistingSkip   = "skip"   // leave an object that exists alone
	ExistingUpdate = "update" // replace it with the backed-up version
)

// Actions reported for each object.
const (
	ActionCreated     = "created"
	ActionUpdated     = "updated"
	ActionUnchanged   = "unchanged" // exists and equals the backup
	ActionSkipped     = "skipped"
	ActionFailed      = "failed"
	ActionWouldCreate = "would create"
	ActionWouldUpdate = "would update"
)

// RestoreOptions configure a restore. The zero value restores every
// object and skips those that exist.
type RestoreOptions struct {
	// Filter selects by the namespaces and resources of the backup
	// (before mapping).
	Filter        Filter
	LabelSelector string
	// ClusterResources as in BackupOptions: auto restores every
	// cluster-scoped object when no namespace filter is given, otherwise
	// only what the selected objects need (their namespaces, CRDs, PVs).
	ClusterResources string
	// NamespaceMapping renames namespaces: old → new.
	NamespaceMapping map[string]string
	// Existing is ExistingSkip (default) or ExistingUpdate.
	Existing  string
	Modifiers *Modifiers
	// DryRun changes nothing; the server validates what it can.
	DryRun bool
	// Privileged names the privilege-granting objects to restore (see
	// PrivilegedResources; PrivilegedAll for every one): left out, they
	// are skipped with a reason, and namespaces keep the Pod Security
	// labels of the target cluster.
	Privileged []string
	// Concurrency is the number of objects applied at once (default 8).
	Concurrency int
	// CRDTimeout bounds the wait for new CRDs to be served (default 60 s).
	CRDTimeout time.Duration
	// Report receives each object's outcome, from one goroutine at a time.
	Report func(Result)
	// BeforeWorkloads runs after volumes, claims and configuration are
	// restored and before any pod or workload is created: the place to
	// write volume data back.
	BeforeWorkloads func(ctx context.Context) error
}

// Validate checks the options.
func (o *RestoreOptions) Validate() error {
	if err := validateSelection(&o.Filter, o.LabelSelector, o.ClusterResources); err != nil {
		return err
	}
	switch o.Existing {
	case "", ExistingSkip, ExistingUpdate:
	default:
		return fmt.Errorf("existing %q: want skip or update", o.Existing)
	}
	for from, to := range o.NamespaceMapping {
		if err := validName(to); err != nil {
			return fmt.Errorf("namespace mapping %s=%s: %w", from, to, err)
		}
	}
	for _, p := range o.Privileged {
		if p != PrivilegedAll && p != PodSecurityLabels && privilegedName(p) == "" {
			return fmt.Errorf("privileged %q: want %s, %s or one of %s", p, PrivilegedAll, PodSecurityLabels, strings.Join(PrivilegedResources, ", "))
		}
	}
	return nil
}

// PrivilegedResources are the cluster-scoped resources whose objects
// grant privilege in the cluster (roles and their bindings, admission
// webhooks and policies, aggregated APIs): a restore creates them only
// when RestoreOptions.Privileged names them. A CRD is one only when it
// converts through a webhook (the API server would call a service the
// snapshot names); a CRD without one is restored with the objects that
// need it.
var PrivilegedResources = []string{
	"clusterroles.rbac.authorization.k8s.io",
	"clusterrolebindings.rbac.authorization.k8s.io",
	"mutatingwebhookconfigurations.admissionregistration.k8s.io",
	"validatingwebhookconfigurations.admissionregistration.k8s.io",
	"validatingadmissionpolicies.admissionregistration.k8s.io",
	"validatingadmissionpolicybindings.admissionregistration.k8s.io",
	"mutatingadmissionpolicies.admissionregistration.k8s.io",
	"mutatingadmissionpolicybindings.admissionregistration.k8s.io",
	"apiservices.apiregistration.k8s.io",
	"customresourcedefinitions.apiextensions.k8s.io",
}

const (
	// PrivilegedAll in RestoreOptions.Privileged restores every
	// privileged object.
	PrivilegedAll = "all"
	// PodSecurityLabels in RestoreOptions.Privileged restores the
	// pod-security.kubernetes.io/ labels of namespaces.
	PodSecurityLabels = "pod-security-labels"
	psaPrefix         = "pod-security.kubernetes.io/"
)

// privilegedName returns the group-resource of PrivilegedResources that
// name (a resource, group-resource or kind, any case) means, or "".
func privilegedName(name string) string {
	name = strings.ToLower(name)
	for _, gr := range PrivilegedResources {
		res, group, _ := strings.Cut(gr, ".")
		kind := strings.TrimSuffix(res, "s")
		if name == gr || name == res || name == kind || name == kind+"."+group {
			return gr
		}
	}
	return ""
}

// privileged says why it (cluster-scoped) is not restored without being
// named, or "".
func (rs *restore) privileged(it *item) string {
	gr := it.gr()
	if !slices.Contains(PrivilegedResources, gr) || rs.asked(gr) {
		return ""
	}
	if gr == "customresourcedefinitions.apiextensions.k8s.io" && nestedString(it.obj, "spec", "conversion", "strategy") != "Webhook" {
		return ""
	}
	return "grants privilege in the cluster: restored only with --privileged " + strings.SplitN(gr, ".", 2)[0] + " (or all)"
}

// asked reports whether RestoreOptions.Privileged names gr (or
// PodSecurityLabels).
func (rs *restore) asked(gr string) bool {
	for _, p := range rs.o.Privileged {
		if p == PrivilegedAll || p == gr || privilegedName(p) == gr {
			return true
		}
	}
	return false
}

// podSecurityLabels returns the pod-security.kubernetes.io/ labels of
// obj.
func podSecurityLabels(obj map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range (&unstructured.Unstructured{Object: obj}).GetLabels() {
		if strings.HasPrefix(k, psaPrefix) {
			out[k] = v
		}
	}
	return out
}

// setPodSecurityLabels replaces the pod-security.kubernetes.io/ labels
// of u with psa.
func setPodSecurityLabels(u *unstructured.Unstructured, psa map[string]string) {
	l := u.GetLabels()
	for k := range l {
		if strings.HasPrefix(k, psaPrefix) {
			delete(l, k)
		}
	}
	for k, v := range psa {
		if l == nil {
			l = map[string]string{}
		}
		l[k] = v
	}
	u.SetLabels(l)
}

// Result is what happened to one object.
type Result struct {
	Group     string `json:"group"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"` // after mapping
	Name      string `json:"name"`
	Action    string `json:"action"`
	Reason    string `json:"reason,omitempty"`
}

// Object names the object: "resource.group namespace/name", the core
// group's resources without a group, cluster-scoped ones without a
// namespace.
func (r Result) Object() string {
	gr := r.Resource
	if r.Group != "" {
		gr += "." + r.Group
	}
	if r.Namespace != "" {
		return gr + " " + r.Namespace + "/" + r.Name
	}
	return gr + " " + r.Name
}

// Summary counts the outcomes of a restore.
type Summary struct {
	Created, Updated, Unchanged, Skipped, Failed int
	Planned                                      int // dry run: would create or update
}

// Partial reports whether some object failed.
func (s *Summary) Partial() bool { return s.Failed > 0 }

// item is one object of the backup.
type item struct {
	path      string
	group     string
	resource  string
	namespace string // in the backup
	name      string
	obj       map[string]any
	err       error // decoding failed
}

func (it *item) gr() string { return groupResource(it.group, it.resource) }

// restoreOrder is the order in which resources are applied; the rest
// follow, built-in before custom resources. Entries after
// workloadsStart are workloads: volume data is written before them.
var restoreOrder = []string{
	"customresourcedefinitions.apiextensions.k8s.io",
	"namespaces",
	"storageclasses.storage.k8s.io",
	"volumesnapshotclasses.snapshot.storage.k8s.io",
	"volumesnapshotcontents.snapshot.storage.k8s.io",
	"volumesnapshots.snapshot.storage.k8s.io",
	"persistentvolumes",
	"persistentvolumeclaims",
	"serviceaccounts",
	"clusterroles.rbac.authorization.k8s.io",
	"roles.rbac.authorization.k8s.io",
	"clusterrolebindings.rbac.authorization.k8s.io",
	"rolebindings.rbac.authorization.k8s.io",
	"secrets",
	"configmaps",
	"limitranges",
	"resourcequotas",
	"priorityclasses.scheduling.k8s.io",
	"services",
	"endpoints",
	"pods",
	"replicationcontrollers",
	"replicasets.apps",
	"deployments.apps",
	"statefulsets.apps",
	"daemonsets.apps",
	"jobs.batch",
	"cronjobs.batch",
	"horizontalpodautoscalers.autoscaling",
	"poddisruptionbudgets.policy",
	"ingresses.networking.k8s.io",
}

const workloadsStart = "pods"

// tier returns the position of a resource in the restore order.
func tier(gr string, custom bool) int {
	for i, r := range restoreOrder {
		if r == gr {
			return i
		}
	}
	if custom {
		return len(restoreOrder) + 1
	}
	return len(restoreOrder)
}

type restore struct {
	c      *Clients
	o      RestoreOptions
	mapper *restmapper.DeferredDiscoveryRESTMapper
	sel    labels.Selector

	mu  sync.Mutex
	sum Summary
	// created are the CRDs this restore created (by name): the ones
	// worth waiting for.
	created map[string]bool
}

// Restore applies the objects in tree to the cluster. It returns an
// error only when the restore cannot go on at all (the tree cannot be
// read, the server cannot be reached); each object that fails is
// reported and counted, and the rest are restored.
func Restore(ctx context.Context, c *Clients, tree source.Tree, o RestoreOptions) (*Summary, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Existing == "" {
		o.Existing = ExistingSkip
	}
	if o.ClusterResources == "" {
		o.ClusterResources = ClusterAuto
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.CRDTimeout <= 0 {
		o.CRDTimeout = 60 * time.Second
	}
	if o.Report == nil {
		o.Report = func(Result) {}
	}
	sel, _ := labels.Parse(o.LabelSelector)
	rs := &restore{c: c, o: o, sel: sel,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(c.Discovery))}

	items, err := readItems(ctx, tree, o.Concurrency)
	if err != nil {
		return nil, err
	}
	items = rs.selectItems(items)

	// Namespaces that objects go to but whose Namespace object is not
	// restored (a mapping, or a filter) are created plainly.
	have := map[string]bool{}
	for _, it := range items {
		if it.gr() == "namespaces" && it.err == nil {
			have[rs.mapNS(it.name)] = true
		}
	}
	var extra []*item
	for _, it := range items {
		if it.namespace == "" {
			continue
		}
		ns := rs.mapNS(it.namespace)
		if !have[ns] {
			have[ns] = true
			extra = append(extra, &item{path: "(implied by " + it.path + ")", resource: "namespaces", name: ns,
				obj: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}})
		}
	}
	items = append(items, extra...)

	custom := map[string]bool{}
	for _, it := range items {
		if it.gr() == "customresourcedefinitions.apiextensions.k8s.io" && it.err == nil {
			custom[it.name] = true // a CRD's name is resource.group
		}
	}
	tiers := map[int][]*item{}
	for _, it := range items {
		t := tier(it.gr(), custom[it.gr()] || (it.group != "" && strings.Contains(it.group, ".") && !strings.HasSuffix(it.group, ".k8s.io")))
		tiers[t] = append(tiers[t], it)
	}
	var order []int
	for t := range tiers {
		order = append(order, t)
	}
	sort.Ints(order)
	workloads := tier(workloadsStart, false)
	beforeDone := false
	for _, t := range order {
		if t >= workloads && !beforeDone {
			beforeDone = true
			if err := rs.before(ctx); err != nil {
				return &rs.sum, err
			}
		}
		if err := rs.applyTier(ctx, tiers[t]); err != nil {
			return &rs.sum, err
		}
		if t == 0 {
			rs.waitCRDs(ctx, tiers[t])
		}
	}
	if !beforeDone {
		if err := rs.before(ctx); err != nil {
			return &rs.sum, err
		}
	}
	return &rs.sum, nil
}

func (rs *restore) before(ctx context.Context) error {
	if rs.o.BeforeWorkloads == nil || rs.o.DryRun {
		return nil
	}
	return rs.o.BeforeWorkloads(ctx)
}

func (rs *restore) mapNS(ns string) string {
	if to, ok := rs.o.NamespaceMapping[ns]; ok {
		return to
	}
	return ns
}

// readItems reads every object file of the tree.
func readItems(ctx context.Context, tree source.Tree, workers int) ([]*item, error) {
	var items []*item
	add := func(dir, group, resource, ns string) error {
		files, err := tree.List(ctx, dir)
		if err != nil {
			return fmt.Errorf("read backup: %w", err)
		}
		for _, f := range files {
			if f.Type != source.TypeFile || !strings.HasSuffix(f.Name, ".json") {
				continue
			}
			items = append(items, &item{path: path.Join(dir, f.Name), group: group, resource: resource,
				namespace: ns, name: strings.TrimSuffix(f.Name, ".json")})
		}
		return nil
	}
	walkGroups := func(base, ns string) error {
		groups, err := listDirs(ctx, tree, base)
		if err != nil {
			return err
		}
		for _, g := range groups {
			resources, err := listDirs(ctx, tree, path.Join(base, g))
			if err != nil {
				return err
			}
			for _, r := range resources {
				if err := add(path.Join(base, g, r), treeGroup(g), r, ns); err != nil {
					return err
				}
			}
		}
		return nil
	}
	top, err := listDirs(ctx, tree, "")
	if err != nil {
		return nil, err
	}
	if slices.Contains(top, "cluster") {
		if err := walkGroups("cluster", ""); err != nil {
			return nil, err
		}
	}
	if slices.Contains(top, "namespaces") {
		nss, err := listDirs(ctx, tree, "namespaces")
		if err != nil {
			return nil, err
		}
		for _, ns := range nss {
			if err := walkGroups(path.Join("namespaces", ns), ns); err != nil {
				return nil, err
			}
		}
	}
	if len(items) == 0 {
		return nil, errors.New("the snapshot holds no Kubernetes objects (no cluster/ or namespaces/ directory)")
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, it := range items {
		g.Go(func() error {
			b, err := source.ReadFile(gctx, tree, it.path)
			if err != nil {
				if gctx.Err() != nil {
					return gctx.Err()
				}
				return fmt.Errorf("read %s: %w", it.path, err)
			}
			it.obj, it.err = decodeObject(b, it)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return items, nil
}

// decodeObject parses an object file and checks it names the object its
// path says.
func decodeObject(b []byte, it *item) (map[string]any, error) {
	obj, err := unmarshalObject(b)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", it.path, err)
	}
	if obj == nil {
		return nil, fmt.Errorf("decode %s: not an object", it.path)
	}
	u := unstructured.Unstructured{Object: obj}
	if _, ok := obj["metadata"].(map[string]any); !ok {
		return nil, fmt.Errorf("decode %s: no metadata", it.path)
	}
	if av, _ := obj["apiVersion"].(string); av == "" {
		return nil, fmt.Errorf("decode %s: no apiVersion", it.path)
	}
	if k, _ := obj["kind"].(string); k == "" {
		return nil, fmt.Errorf("decode %s: no kind", it.path)
	}
	if u.GetName() != it.name {
		return nil, fmt.Errorf("decode %s: names %q, not %q", it.path, u.GetName(), it.name)
	}
	if it.namespace != "" && u.GetNamespace() != it.namespace {
		return nil, fmt.Errorf("decode %s: in namespace %q, not %q", it.path, u.GetNamespace(), it.namespace)
	}
	return obj, nil
}

func listDirs(ctx context.Context, tree source.Tree, p string) ([]string, error) {
	entries, err := tree.List(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("read backup: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.Type == source.TypeDir {
			out = append(out, e.Name)
		}
	}
	return out, nil
}

// selectItems applies the filters.
func (rs *restore) selectItems(items []*item) []*item {
	f := &rs.o.Filter
	allCluster := rs.o.ClusterResources == ClusterOn || rs.o.ClusterResources == ClusterAuto && !f.NamespacesFiltered()
	// What the selected namespaced objects need from the cluster scope.
	needCRD, needPV := map[string]bool{}, map[string]bool{}
	var out []*item
	for _, it := range items {
		r := Resource{Group: it.group, Resource: it.resource}
		if it.obj != nil {
			r.Kind, _ = it.obj["kind"].(string)
		}
		if it.namespace == "" {
			continue
		}
		if !f.Namespace(it.namespace) || !f.Wanted(r) || !rs.labelsMatch(it) {
			continue
		}
		out = append(out, it)
		if it.group != "" {
			needCRD[it.gr()] = true
		}
		if it.gr() == "persistentvolumeclaims" && it.obj != nil {
			if v := nestedString(it.obj, "spec", "volumeName"); v != "" {
				needPV[v] = true
			}
		}
	}
	for _, it := range items {
		if it.namespace != "" {
			continue
		}
		r := Resource{Group: it.group, Resource: it.resource}
		switch gr := it.gr(); {
		case gr == "namespaces":
			if f.Namespace(it.name) {
				out = append(out, it)
			}
		case rs.o.ClusterResources == ClusterOff:
		case allCluster:
			if f.Wanted(r) && rs.labelsMatch(it) {
				out = append(out, it)
			}
		case gr == "customresourcedefinitions.apiextensions.k8s.io" && needCRD[it.name],
			gr == "persistentvolumes" && needPV[it.name]:
			out = append(out, it)
		}
	}
	return out
}

func (rs *restore) labelsMatch(it *item) bool {
	if rs.sel.Empty() || it.obj == nil {
		return true
	}
	u := unstructured.Unstructured{Object: it.obj}
	return rs.sel.Matches(labels.Set(u.GetLabels()))
}

func (rs *restore) applyTier(ctx context.Context, items []*item) error {
	sort.Slice(items, func(i, j int) bool { return items[i].path < items[j].path })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rs.o.Concurrency)
	for _, it := range items {
		g.Go(func() error {
			res := rs.apply(gctx, it)
			rs.mu.Lock()
			defer rs.mu.Unlock()
			switch res.Action {
			case ActionCreated:
				rs.sum.Created++
				if it.gr() == "customresourcedefinitions.apiextensions.k8s.io" {
					if rs.created == nil {
						rs.created = map[string]bool{}
					}
					rs.created[it.name] = true
				}
			case ActionUpdated:
				rs.sum.Updated++
			case ActionUnchanged:
				rs.sum.Unchanged++
			case ActionSkipped:
				rs.sum.Skipped++
			case ActionFailed:
				rs.sum.Failed++
			case ActionWouldCreate, ActionWouldUpdate:
				rs.sum.Planned++
			}
			rs.o.Report(res)
			return nil
		})
	}
	_ = g.Wait()
	return ctx.Err()
}

// apply restores one object.
func (rs *restore) apply(ctx context.Context, it *item) Result {
	res := Result{Group: it.group, Resource: it.resource, Namespace: rs.mapNS(it.namespace), Name: it.name}
	if it.gr() == "namespaces" {
		res.Name = rs.mapNS(it.name)
	}
	fail := func(format string, args ...any) Result {
		res.Action, res.Reason = ActionFailed, fmt.Sprintf(format, args...)
		return res
	}
	skip := func(reason string) Result {
		res.Action, res.Reason = ActionSkipped, reason
		return res
	}
	if it.err != nil {
		return fail("%v", it.err)
	}
	obj, reason, err := rs.prepare(it)
	if err != nil {
		return fail("%v", err)
	}
	if reason != "" {
		return skip(reason)
	}
	u := &unstructured.Unstructured{Object: obj}
	gvk := u.GroupVersionKind()
	// Every filter and report went by where the object was found: its
	// JSON must say the same, or a file under configmaps/ could create a
	// ClusterRoleBinding.
	if gvk.Group != it.group || gvk.Kind == "" {
		return fail("%s holds a %s of group %q, not a %s: refused", it.path, gvk.Kind, gvk.Group, it.gr())
	}
	mapping, err := rs.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			// The version may be gone: take the one the cluster prefers.
			if mapping, err = rs.mapper.RESTMapping(gvk.GroupKind()); err == nil {
				u.SetAPIVersion(mapping.GroupVersionKind.GroupVersion().String())
			}
		}
		if err != nil {
			if rs.o.DryRun && meta.IsNoMatchError(err) {
				res.Action, res.Reason = ActionWouldCreate, "its resource is not served yet (a CRD in this restore may add it)"
				return res
			}
			return fail("the cluster does not serve %s: %v", gvk.GroupKind(), err)
		}
	}
	if mapping.Resource.Group != it.group || mapping.Resource.Resource != it.resource {
		return fail("%s holds a %s (%s), not a %s: refused", it.path, gvk.Kind, groupResource(mapping.Resource.Group, mapping.Resource.Resource), it.gr())
	}
	ri := rs.c.Dynamic.Resource(mapping.Resource)
	var client dynamic.ResourceInterface = ri
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if res.Namespace == "" {
			return fail("%s is namespaced but the backup has it at cluster scope", gvk.Kind)
		}
		u.SetNamespace(res.Namespace)
		client = ri.Namespace(res.Namespace)
	} else {
		if it.namespace != "" {
			return fail("%s holds a cluster-scoped %s under namespace %s: refused", it.path, gvk.Kind, it.namespace)
		}
		u.SetNamespace("")
	}
	var dry []string
	if rs.o.DryRun {
		dry = []string{metav1.DryRunAll}
	}
	_, err = client.Create(ctx, u, metav1.CreateOptions{DryRun: dry, FieldManager: "bunker"})
	switch {
	case err == nil:
		if rs.o.DryRun {
			res.Action = ActionWouldCreate
		} else {
			res.Action = ActionCreated
		}
		return res
	case apierrors.IsAlreadyExists(err):
	case rs.o.DryRun && apierrors.IsNotFound(err):
		res.Action, res.Reason = ActionWouldCreate, "after its namespace"
		return res
	default:
		return fail("%s", apiMessage(err))
	}
	cur, err := client.Get(ctx, u.GetName(), metav1.GetOptions{})
	if err != nil {
		return fail("exists, but cannot be read: %s", apiMessage(err))
	}
	if it.gr() == "namespaces" && !rs.asked(PodSecurityLabels) {
		setPodSecurityLabels(u, podSecurityLabels(cur.Object))
	}
	// What the object would be after an update, defaults applied by the
	// server, against what it is.
	u.SetResourceVersion(cur.GetResourceVersion())
	after, err := client.Update(ctx, u, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: "bunker"})
	if err != nil {
		if rs.o.Existing == ExistingSkip {
			return skip("exists and differs (" + apiMessage(err) + ")")
		}
		return fail("exists; update refused: %s", apiMessage(err))
	}
	if sameObject(cur.Object, after.Object) {
		res.Action = ActionUnchanged
		return res
	}
	if rs.o.Existing == ExistingSkip {
		return skip("exists and differs")
	}
	if rs.o.DryRun {
		res.Action = ActionWouldUpdate
		return res
	}
	if _, err := client.Update(ctx, u, metav1.UpdateOptions{FieldManager: "bunker"}); err != nil {
		return fail("update: %s", apiMessage(err))
	}
	res.Action = ActionUpdated
	return res
}

// prepare returns the object as it goes to the cluster: namespace
// mapped, modifiers applied; or a reason to leave it out.
func (rs *restore) prepare(it *item) (map[string]any, string, error) {
	u := &unstructured.Unstructured{Object: deepCopy(it.obj)}
	for _, ref := range u.GetOwnerReferences() {
		if ref.Controller != nil && *ref.Controller {
			return nil, fmt.Sprintf("managed by %s %s, which recreates it", ref.Kind, ref.Name), nil
		}
	}
	gr := it.gr()
	if reason := clusterOwned(gr, it.namespace, it.name); reason != "" {
		return nil, reason, nil
	}
	if it.namespace == "" {
		if reason := rs.privileged(it); reason != "" {
			return nil, reason, nil
		}
	}
	switch gr {
	case "secrets":
		if t := nestedString(u.Object, "type"); t == "kubernetes.io/service-account-token" {
			return nil, "a service account token; the cluster issues its own", nil
		}
	case "namespaces":
		to := rs.mapNS(it.name)
		u.SetName(to)
		if l := u.GetLabels(); l != nil && l["kubernetes.io/metadata.name"] != "" {
			l["kubernetes.io/metadata.name"] = to
			u.SetLabels(l)
		}
		if !rs.asked(PodSecurityLabels) {
			// Pod Security labels decide what pods may do: a new
			// namespace gets the cluster's defaults, an existing one
			// keeps its own (see apply).
			setPodSecurityLabels(u, nil)
		}
	case "pods":
		// Let the scheduler place it: the node may not exist here.
		unstructured.RemoveNestedField(u.Object, "spec", "nodeName")
	case "persistentvolumes":
		if ns, ok, _ := unstructured.NestedString(u.Object, "spec", "claimRef", "namespace"); ok {
			_ = unstructured.SetNestedField(u.Object, rs.mapNS(ns), "spec", "claimRef", "namespace")
		}
	case "rolebindings.rbac.authorization.k8s.io", "clusterrolebindings.rbac.authorization.k8s.io":
		if subjects, ok := u.Object["subjects"].([]any); ok {
			for _, s := range subjects {
				if sm, ok := s.(map[string]any); ok {
					if ns, ok := sm["namespace"].(string); ok && ns != "" {
						sm["namespace"] = rs.mapNS(ns)
					}
				}
			}
		}
	}
	if it.namespace != "" {
		u.SetNamespace(rs.mapNS(it.namespace))
	}
	if rs.o.Modifiers != nil {
		b, err := json.Marshal(u.Object)
		if err != nil {
			return nil, "", err
		}
		b, _, err = rs.o.Modifiers.Apply(b, it.group, it.resource, u.GetNamespace(), u.GetName(), u.GetLabels())
		if err != nil {
			return nil, "", err
		}
		out, err := unmarshalObject(b)
		if err != nil || out == nil {
			return nil, "", fmt.Errorf("resource modifiers made the object invalid: %v", err)
		}
		u.Object = out
	}
	return u.Object, "", nil
}

// clusterOwned says why an object that every cluster makes for itself
// is not restored, or "".
func clusterOwned(gr, ns, name string) string {
	switch {
	case ns == "default" && name == "kubernetes" &&
		(gr == "services" || gr == "endpoints" || gr == "endpointslices.discovery.k8s.io"):
		return "the API server's own service, kept by the target cluster"
	case gr == "configmaps" && name == "kube-root-ca.crt":
		return "the cluster's CA bundle, published by the target cluster"
	}
	return ""
}

// waitCRDs waits until the CRDs this restore created are established, then
// forgets the cached discovery so their resources can be mapped.
func (rs *restore) waitCRDs(ctx context.Context, items []*item) {
	defer rs.mapper.Reset()
	if rs.o.DryRun {
		return
	}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	deadline := time.Now().Add(rs.o.CRDTimeout)
	for _, it := range items {
		if it.gr() != "customresourcedefinitions.apiextensions.k8s.io" || !rs.created[it.name] {
			continue
		}
		var gk schema.GroupKind
		for time.Now().Before(deadline) {
			crd, err := rs.c.Dynamic.Resource(gvr).Get(ctx, it.name, metav1.GetOptions{})
			if err == nil && crdEstablished(crd.Object) {
				gk = schema.GroupKind{Group: nestedString(crd.Object, "spec", "group"), Kind: nestedString(crd.Object, "spec", "names", "kind")}
				break
			}
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return
			}
		}
		// Established does not mean discovery lists the resource yet (the
		// API server updates it a moment later, longer under load): wait
		// until it maps.
		for gk.Kind != "" && time.Now().Before(deadline) {
			rs.mapper.Reset()
			if _, err := rs.mapper.RESTMapping(gk); err == nil {
				break
			}
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return
			}
		}
	}
}

// sleepCtx waits for d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

func crdEstablished(obj map[string]any) bool {
	conds, _ := nested(obj, "status", "conditions").([]any)
	for _, c := range conds {
		if cm, ok := c.(map[string]any); ok && cm["type"] == "Established" && cm["status"] == "True" {
			return true
		}
	}
	return false
}

// sameObject compares two versions of an object without the fields the
// server maintains.
func sameObject(a, b map[string]any) bool {
	a, b = deepCopy(a), deepCopy(b)
	for _, o := range []map[string]any{a, b} {
		if md, ok := o["metadata"].(map[string]any); ok {
			for _, f := range serverFields {
				delete(md, f)
			}
		}
		delete(o, "status")
	}
	return reflect.DeepEqual(a, b)
}

func deepCopy(m map[string]any) map[string]any { return runtime.DeepCopyJSON(m) }

// unmarshalObject decodes JSON with numbers kept exact (json.Number).
func unmarshalObject(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var obj map[string]any
	if err := d.Decode(&obj); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("data after the object")
	}
	return obj, nil
}

// apiMessage is the server's message for err, without the Go error
// wrapping around it.
func apiMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status().Message
	}
	return err.Error()
}
