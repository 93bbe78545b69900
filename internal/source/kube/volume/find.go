package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// The kinds of volume Find returns.
const (
	KindHostPath = "hostPath"
	KindLocal    = "local"
	KindCSI      = "csi"
)

// DefaultKubeletDir is the kubelet's root directory on most distributions.
const DefaultKubeletDir = "/var/lib/kubelet"

// Volume is the data of one PersistentVolumeClaim that this node can read.
type Volume struct {
	Namespace, PVC, PV string
	Node               string // the node the data is on ("" when unknown: a hostPath volume no pod uses)
	Kind               string // KindHostPath, KindLocal or KindCSI
	Driver             string // the CSI driver (Kind csi)
	Pod                string // the pod whose kubelet directory Path is (Kind csi), in Namespace
	Path               string // absolute path on this machine (NodeRoot applied)
}

// Skipped is a claim Find did not return, and why ("not bound", "on node
// n2", "nfs: not supported", "csi: not mounted on this node").
type Skipped struct {
	Namespace, PVC, Reason string
}

// FindOptions configure Find.
type FindOptions struct {
	// Node is this node's name; "" accepts every node (single-node and
	// test clusters).
	Node string
	// NodeRoot is where the node's root filesystem is mounted in this
	// container; "" is "/".
	NodeRoot string
	// KubeletDir is the kubelet's root directory on the node; "" is
	// DefaultKubeletDir.
	KubeletDir string
	// Namespace selects namespaces; nil selects all.
	Namespace func(string) bool
	// PreBound also accepts a claim that names its volume (and the
	// volume the claim) but is not marked Bound yet: a restore writes
	// data into volumes it has just recreated, before the cluster's
	// controllers have caught up.
	PreBound bool
}

// Validate checks the options.
func (o FindOptions) Validate() error {
	if o.NodeRoot != "" && !filepath.IsAbs(o.NodeRoot) {
		return fmt.Errorf("node root %q is not an absolute path", o.NodeRoot)
	}
	if o.KubeletDir != "" && !filepath.IsAbs(o.KubeletDir) {
		return fmt.Errorf("kubelet directory %q is not an absolute path", o.KubeletDir)
	}
	return nil
}

// local returns the path on this machine of the node's absolute path p.
func (o FindOptions) local(p string) string {
	root := o.NodeRoot
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, filepath.FromSlash(p))
}

func (o FindOptions) kubeletDir() string {
	if o.KubeletDir == "" {
		return DefaultKubeletDir
	}
	return o.KubeletDir
}

// PodVolumePath is where the kubelet mounts the CSI volume pv for the pod
// with the given UID, on this machine.
func (o FindOptions) PodVolumePath(podUID, pv string) string {
	return o.local(filepath.Join(o.kubeletDir(), "pods", podUID, "volumes", "kubernetes.io~csi", pv, "mount"))
}

// Find maps the bound claims of the selected namespaces to the directory
// on this node that holds their data: a hostPath or local volume's path
// (its node from the volume's node affinity, else from a pod that mounts
// it), and for a CSI volume the kubelet's directory for a pod on this
// node that mounts the claim. Claims whose data this node cannot read are
// returned as Skipped with the reason; both lists are sorted by namespace
// and claim.
func Find(ctx context.Context, cs kubernetes.Interface, o FindOptions) ([]Volume, []Skipped, error) {
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	pvcs, err := cs.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list persistent volume claims: %w", err)
	}
	pvList, err := cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list persistent volumes: %w", err)
	}
	pvs := make(map[string]*corev1.PersistentVolume, len(pvList.Items))
	for i := range pvList.Items {
		pvs[pvList.Items[i].Name] = &pvList.Items[i]
	}
	f := &finder{cs: cs, o: o}
	lo := metav1.ListOptions{}
	if o.Node != "" {
		lo.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", o.Node).String()
	}
	f.here, err = claimPods(ctx, cs, lo)
	if err != nil {
		return nil, nil, err
	}
	var vols []Volume
	var skipped []Skipped
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		if o.Namespace != nil && !o.Namespace(pvc.Namespace) {
			continue
		}
		v, reason, err := f.resolve(ctx, pvc, pvs[pvc.Spec.VolumeName])
		if err != nil {
			return nil, nil, err
		}
		if reason != "" {
			skipped = append(skipped, Skipped{Namespace: pvc.Namespace, PVC: pvc.Name, Reason: reason})
			continue
		}
		vols = append(vols, v)
	}
	sort.Slice(vols, func(i, j int) bool {
		return vols[i].Namespace+"/"+vols[i].PVC < vols[j].Namespace+"/"+vols[j].PVC
	})
	sort.Slice(skipped, func(i, j int) bool {
		return skipped[i].Namespace+"/"+skipped[i].PVC < skipped[j].Namespace+"/"+skipped[j].PVC
	})
	return vols, skipped, nil
}

// finder resolves claims to paths. here holds the pods on this node (all
// pods when o.Node is ""), by "namespace/claim"; all pods are listed only
// when a hostPath volume without node affinity needs them.
type finder struct {
	cs   kubernetes.Interface
	o    FindOptions
	here map[string][]*corev1.Pod
	all  map[string][]*corev1.Pod

	node       *corev1.Node // this node, for node affinity; nil until needed
	nodeLoaded bool
}

// claimPods lists pods and returns those that may have their volumes
// mounted (not finished), by "namespace/claim" of each claim they use,
// running pods first.
func claimPods(ctx context.Context, cs kubernetes.Interface, lo metav1.ListOptions) (map[string][]*corev1.Pod, error) {
	pods, err := cs.CoreV1().Pods("").List(ctx, lo)
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	out := map[string][]*corev1.Pod{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, v := range p.Spec.Volumes {
			var claim string
			switch {
			case v.PersistentVolumeClaim != nil:
				claim = v.PersistentVolumeClaim.ClaimName
			case v.Ephemeral != nil:
				// A generic ephemeral volume's claim is named after
				// the pod and the volume.
				claim = p.Name + "-" + v.Name
			default:
				continue
			}
			k := p.Namespace + "/" + claim
			out[k] = append(out[k], p)
		}
	}
	for _, ps := range out {
		sort.SliceStable(ps, func(i, j int) bool {
			ri, rj := podRank(ps[i]), podRank(ps[j])
			if ri != rj {
				return ri < rj
			}
			return ps[i].Name < ps[j].Name
		})
	}
	return out, nil
}

// podRank orders the pods of a claim: running ones first, terminating
// ones last.
func podRank(p *corev1.Pod) int {
	switch {
	case p.DeletionTimestamp != nil:
		return 2
	case p.Status.Phase == corev1.PodRunning:
		return 0
	default:
		return 1
	}
}

// resolve returns the volume of pvc, or why it is skipped. pv is the
// volume the claim is bound to (nil when there is none).
func (f *finder) resolve(ctx context.Context, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) (Volume, string, error) {
	if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound && !f.o.PreBound {
		return Volume{}, "not bound", nil
	}
	if pv == nil {
		return Volume{}, fmt.Sprintf("volume %s not found", pvc.Spec.VolumeName), nil
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.Namespace != pvc.Namespace || ref.Name != pvc.Name || (ref.UID != "" && ref.UID != pvc.UID) {
		return Volume{}, fmt.Sprintf("volume %s is bound to another claim", pv.Name), nil
	}
	if isBlock(pvc.Spec.VolumeMode) || isBlock(pv.Spec.VolumeMode) {
		return Volume{}, "block volume: not supported", nil
	}
	v := Volume{Namespace: pvc.Namespace, PVC: pvc.Name, PV: pv.Name}
	key := pvc.Namespace + "/" + pvc.Name
	switch {
	case pv.Spec.HostPath != nil, pv.Spec.Local != nil:
		v.Kind = KindLocal
		nodePath := ""
		if pv.Spec.HostPath != nil {
			v.Kind, nodePath = KindHostPath, pv.Spec.HostPath.Path
		} else {
			nodePath = pv.Spec.Local.Path
		}
		if !filepath.IsAbs(nodePath) {
			return Volume{}, fmt.Sprintf("%s: path %q is not absolute", v.Kind, nodePath), nil
		}
		if reason, err := f.placeOnNode(ctx, &v, pv, key); reason != "" || err != nil {
			return Volume{}, reason, err
		}
		v.Path = f.o.local(nodePath)
		fi, err := os.Stat(v.Path)
		// A restore creates a directory that is missing (a new node).
		missingOK := f.o.PreBound && errors.Is(err, fs.ErrNotExist)
		if !missingOK && (err != nil || !fi.IsDir()) {
			return Volume{}, fmt.Sprintf("%s: %s is not a directory on this node", v.Kind, nodePath), nil
		}
	case pv.Spec.CSI != nil:
		v.Kind, v.Driver = KindCSI, pv.Spec.CSI.Driver
		pods := f.here[key]
		if len(pods) == 0 {
			if f.o.Node == "" {
				return Volume{}, "csi: not mounted by any pod", nil
			}
			return Volume{}, "csi: not mounted on this node", nil
		}
		// Any pod on this node will do: the kubelet mounts the volume
		// for each of them, and they all see the same data.
		var missing string
		for _, p := range pods {
			path := f.o.PodVolumePath(string(p.UID), pv.Name)
			if fi, err := os.Stat(path); err == nil && fi.IsDir() {
				v.Pod, v.Node, v.Path = p.Name, p.Spec.NodeName, path
				break
			}
			if missing == "" {
				missing = path
			}
		}
		if v.Path == "" {
			return Volume{}, fmt.Sprintf("csi: %s not found (is the kubelet directory %s mounted here with mountPropagation HostToContainer?)", missing, f.o.kubeletDir()), nil
		}
	default:
		return Volume{}, volumeSource(pv) + ": not supported", nil
	}
	return v, "", nil
}

// placeOnNode decides whether the hostPath or local volume pv is on this
// node and sets v.Node, or returns why not.
func (f *finder) placeOnNode(ctx context.Context, v *Volume, pv *corev1.PersistentVolume, key string) (string, error) {
	if na := pv.Spec.NodeAffinity; na != nil && na.Required != nil {
		names := affinityNodes(na.Required)
		if f.o.Node == "" {
			if len(names) > 0 {
				v.Node = names[0]
			}
			return "", nil
		}
		node, err := f.thisNode(ctx)
		if err != nil {
			return "", err
		}
		if !matchNode(na.Required, node) {
			if len(names) > 0 {
				return "on node " + strings.Join(names, ","), nil
			}
			return "not on this node (node affinity)", nil
		}
		v.Node = f.o.Node
		return "", nil
	}
	// No affinity (a hostPath volume): the data is where a pod uses it.
	if ps := f.here[key]; len(ps) > 0 {
		v.Node = ps[0].Spec.NodeName
		return "", nil
	}
	if f.o.Node == "" {
		return "", nil
	}
	if f.all == nil {
		all, err := claimPods(ctx, f.cs, metav1.ListOptions{})
		if err != nil {
			return "", err
		}
		f.all = all
	}
	if ps := f.all[key]; len(ps) > 0 {
		return "on node " + ps[0].Spec.NodeName, nil
	}
	// Nobody uses it: take what this node has.
	v.Node = f.o.Node
	return "", nil
}

// thisNode returns o.Node's Node object; when it cannot be read (not
// found, or no permission), a stand-in with the usual hostname label.
func (f *finder) thisNode(ctx context.Context) (*corev1.Node, error) {
	if f.nodeLoaded {
		return f.node, nil
	}
	n, err := f.cs.CoreV1().Nodes().Get(ctx, f.o.Node, metav1.GetOptions{})
	switch {
	case err == nil:
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		n = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: f.o.Node, Labels: map[string]string{corev1.LabelHostname: f.o.Node}}}
	default:
		return nil, fmt.Errorf("get node %s: %w", f.o.Node, err)
	}
	f.node, f.nodeLoaded = n, true
	return n, nil
}

func isBlock(m *corev1.PersistentVolumeMode) bool {
	return m != nil && *m == corev1.PersistentVolumeBlock
}

// volumeSource names the volume source of pv as its JSON field ("nfs").
func volumeSource(pv *corev1.PersistentVolume) string {
	s := reflect.ValueOf(pv.Spec.PersistentVolumeSource)
	for i := 0; i < s.NumField(); i++ {
		if fv := s.Field(i); fv.Kind() == reflect.Pointer && !fv.IsNil() {
			name, _, _ := strings.Cut(s.Type().Field(i).Tag.Get("json"), ",")
			return name
		}
	}
	return "unknown volume source"
}

// affinityNodes returns the node names a node selector names (hostname
// label or metadata.name with operator In), for messages.
func affinityNodes(ns *corev1.NodeSelector) []string {
	var out []string
	for _, t := range ns.NodeSelectorTerms {
		for _, r := range t.MatchExpressions {
			if r.Key == corev1.LabelHostname && r.Operator == corev1.NodeSelectorOpIn {
				out = append(out, r.Values...)
			}
		}
		for _, r := range t.MatchFields {
			if r.Key == "metadata.name" && r.Operator == corev1.NodeSelectorOpIn {
				out = append(out, r.Values...)
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// matchNode reports whether node satisfies the node selector: any term,
// with all of its requirements. A term without requirements matches
// nothing, as in the scheduler.
func matchNode(ns *corev1.NodeSelector, node *corev1.Node) bool {
	for _, t := range ns.NodeSelectorTerms {
		if len(t.MatchExpressions) == 0 && len(t.MatchFields) == 0 {
			continue
		}
		ok := true
		for _, r := range t.MatchExpressions {
			v, has := node.Labels[r.Key]
			if !matchRequirement(r, v, has) {
				ok = false
				break
			}
		}
		for _, r := range t.MatchFields {
			if r.Key != "metadata.name" || !matchRequirement(r, node.Name, true) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func matchRequirement(r corev1.NodeSelectorRequirement, v string, has bool) bool {
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		return has && slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpNotIn:
		return !has || !slices.Contains(r.Values, v)
	case corev1.NodeSelectorOpExists:
		return has
	case corev1.NodeSelectorOpDoesNotExist:
		return !has
	case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		if !has || len(r.Values) != 1 {
			return false
		}
		a, err1 := strconv.ParseInt(v, 10, 64)
		b, err2 := strconv.ParseInt(r.Values[0], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return false
		}
		if r.Operator == corev1.NodeSelectorOpGt {
			return a > b
		}
		return a < b
	}
	return false
}
