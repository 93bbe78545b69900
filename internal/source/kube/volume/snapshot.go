package volume

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// The CSI snapshot API (external-snapshotter's CRDs), used through the
// dynamic client.
var (
	SnapshotGVR      = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}
	SnapshotClassGVR = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotclasses"}
)

const (
	// DefaultClassAnnotation marks the default VolumeSnapshotClass of a
	// CSI driver.
	DefaultClassAnnotation = "snapshot.storage.kubernetes.io/is-default-class"
	// DefaultMoverImage is the mover pod's image when none is given: it
	// only has to keep running while the clone is mounted.
	DefaultMoverImage = "registry.k8s.io/pause:3.10"
	// DefaultSnapshotTimeout bounds each wait of SnapshotClone.
	DefaultSnapshotTimeout = 5 * time.Minute

	// Labels on every object SnapshotClone creates.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelTemporary = "backup.bunker.dev/temporary"
	// AnnotationSourcePVC on them names the claim they copy.
	AnnotationSourcePVC = "backup.bunker.dev/source-pvc"

	cleanupTimeout = 30 * time.Second
)

// SnapshotOptions configure SnapshotClone.
type SnapshotOptions struct {
	// Class is the VolumeSnapshotClass; "" is the default class of the
	// claim's CSI driver (annotation DefaultClassAnnotation "true").
	Class string
	// Node is where the mover pod runs: this node ("" lets the
	// scheduler choose: single-node and test clusters).
	Node string
	// Image is the mover pod's image ("" is DefaultMoverImage). It only
	// keeps the clone mounted; it runs as user 65535 with no privileges.
	Image string
	// Timeout bounds each wait: the snapshot becoming ready, the clone
	// claim being bound, the mover pod running. 0 is
	// DefaultSnapshotTimeout.
	Timeout time.Duration
	// Warn receives problems that do not stop the copy (nil drops them).
	Warn func(string)
}

// Validate checks the options.
func (o SnapshotOptions) Validate() error {
	if o.Timeout < 0 {
		return fmt.Errorf("snapshot timeout %v is negative", o.Timeout)
	}
	return nil
}

func (o SnapshotOptions) timeout() time.Duration {
	if o.Timeout == 0 {
		return DefaultSnapshotTimeout
	}
	return o.Timeout
}

func (o SnapshotOptions) warn(format string, args ...any) {
	if o.Warn != nil {
		o.Warn(fmt.Sprintf(format, args...))
	}
}

// Clone is a read-only copy of a claim made from a CSI VolumeSnapshot and
// mounted on a node by a mover pod. Its objects live in Namespace.
type Clone struct {
	Namespace string
	Snapshot  string // the VolumeSnapshot
	PVC       string // the claim restored from it
	Pod       string // the mover pod that mounts it
	Volume    Volume // where to read the clone (Volume.PVC is the clone claim)

	cs  kubernetes.Interface
	dyn dynamic.Interface
}

// HasSnapshotAPI reports whether the cluster serves
// snapshot.storage.k8s.io/v1 VolumeSnapshots.
func HasSnapshotAPI(ctx context.Context, dc discovery.DiscoveryInterface) (bool, error) {
	gv := SnapshotGVR.GroupVersion().String()
	l, err := discovery.ToDiscoveryInterfaceWithContext(dc).ServerResourcesForGroupVersionWithContext(ctx, gv)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", gv, err)
	}
	for _, r := range l.APIResources {
		if r.Name == SnapshotGVR.Resource {
			return true, nil
		}
	}
	return false, nil
}

// SnapshotClone copies the claim ns/pvc through a CSI snapshot: it
// creates a VolumeSnapshot of it and waits until it is ready to use,
// creates a claim from it (same storage class and access modes, at least
// the same size) and a mover pod on o.Node that mounts it read-only,
// waits until the pod runs, and returns where the clone's data is on this
// node (the kubelet's pod-volume directory, under fo.NodeRoot). When it
// fails, it deletes what it created before it returns.
//
// The caller reads Clone.Volume.Path and then calls Cleanup.
func SnapshotClone(ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, ns, pvcName string, o SnapshotOptions, fo FindOptions) (_ *Clone, err error) {
	if err := errors.Join(o.Validate(), fo.Validate()); err != nil {
		return nil, err
	}
	if o.Image == "" {
		o.Image = DefaultMoverImage
	}
	c := &Clone{Namespace: ns, cs: cs, dyn: dyn}
	defer func() {
		if err != nil {
			if cerr := c.Cleanup(ctx); cerr != nil {
				err = fmt.Errorf("%w (and cleaning up: %v)", err, cerr)
			}
		}
	}()
	what := fmt.Sprintf("snapshot of PVC %s/%s", ns, pvcName)
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, pvcName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return nil, fmt.Errorf("%s: the claim is not bound", what)
	}
	if isBlock(pvc.Spec.VolumeMode) {
		return nil, fmt.Errorf("%s: block volumes are not supported", what)
	}
	pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if pv.Spec.CSI == nil {
		return nil, fmt.Errorf("%s: volume %s is a %s volume, not CSI: it cannot be snapshotted", what, pv.Name, volumeSource(pv))
	}
	class, err := snapshotClass(ctx, dyn, o, pv.Spec.CSI.Driver)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}

	// The snapshot.
	labels := map[string]string{LabelManagedBy: "bunker", LabelTemporary: "true"}
	annotations := map[string]string{AnnotationSourcePVC: pvcName}
	snap := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": SnapshotGVR.GroupVersion().String(),
		"kind":       "VolumeSnapshot",
		"metadata": map[string]any{
			"generateName": namePrefix("bunker-", pvcName),
			"namespace":    ns,
			"labels":       toAny(labels),
			"annotations":  toAny(annotations),
		},
		"spec": map[string]any{
			"volumeSnapshotClassName": class,
			"source":                  map[string]any{"persistentVolumeClaimName": pvcName},
		},
	}}
	snap, err = dyn.Resource(SnapshotGVR).Namespace(ns).Create(ctx, snap, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: create VolumeSnapshot: %w", what, err)
	}
	c.Snapshot = snap.GetName()
	owner := []metav1.OwnerReference{{APIVersion: SnapshotGVR.GroupVersion().String(), Kind: "VolumeSnapshot", Name: snap.GetName(), UID: snap.GetUID()}}
	snap, err = waitFor(ctx, o.timeout(), fmt.Sprintf("VolumeSnapshot %s/%s of PVC %s", ns, c.Snapshot, pvcName), func(ctx context.Context) (*unstructured.Unstructured, bool, string, error) {
		s, err := dyn.Resource(SnapshotGVR).Namespace(ns).Get(ctx, c.Snapshot, metav1.GetOptions{})
		if err != nil {
			return nil, false, "", err
		}
		ready, _, _ := unstructured.NestedBool(s.Object, "status", "readyToUse")
		state := "readyToUse is not true"
		if msg, ok, _ := unstructured.NestedString(s.Object, "status", "error", "message"); ok && msg != "" {
			state += "; error: " + msg
		}
		return s, ready, state, nil
	})
	if err != nil {
		return nil, err
	}

	// The clone claim: at least as large as the source and the snapshot.
	size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if rs, ok, _ := unstructured.NestedString(snap.Object, "status", "restoreSize"); ok {
		if q, err := resource.ParseQuantity(rs); err == nil && q.Cmp(size) > 0 {
			size = q
		}
	}
	if size.IsZero() {
		return nil, fmt.Errorf("%s: the claim requests no storage size", what)
	}
	fsMode := corev1.PersistentVolumeFilesystem
	apiGroup := SnapshotGVR.Group
	clonePVC := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{GenerateName: namePrefix("bunker-clone-", pvcName), Namespace: ns,
			Labels: labels, Annotations: annotations, OwnerReferences: owner},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: pvc.Spec.StorageClassName,
			AccessModes:      pvc.Spec.AccessModes,
			VolumeMode:       &fsMode,
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}},
			DataSource:       &corev1.TypedLocalObjectReference{APIGroup: &apiGroup, Kind: "VolumeSnapshot", Name: c.Snapshot},
		},
	}
	clonePVC, err = cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, clonePVC, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: create the clone PVC: %w", what, err)
	}
	c.PVC = clonePVC.Name

	// The mover pod, created at once: a claim whose storage class binds
	// on first consumer is only provisioned for a pod.
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, moverPod(ns, pvcName, c.PVC, o, labels, annotations, owner), metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: create the mover pod: %w", what, err)
	}
	c.Pod = pod.Name

	clonePVC, err = waitFor(ctx, o.timeout(), fmt.Sprintf("clone PVC %s/%s of VolumeSnapshot %s", ns, c.PVC, c.Snapshot), func(ctx context.Context) (*corev1.PersistentVolumeClaim, bool, string, error) {
		p, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, c.PVC, metav1.GetOptions{})
		if err != nil {
			return nil, false, "", err
		}
		return p, p.Status.Phase == corev1.ClaimBound && p.Spec.VolumeName != "", "phase " + string(p.Status.Phase), nil
	})
	if err != nil {
		return nil, err
	}
	pod, err = waitFor(ctx, o.timeout(), fmt.Sprintf("mover pod %s/%s", ns, c.Pod), func(ctx context.Context) (*corev1.Pod, bool, string, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, c.Pod, metav1.GetOptions{})
		if err != nil {
			return nil, false, "", err
		}
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return nil, false, "", fmt.Errorf("the pod ended (%s)", podState(p))
		}
		return p, p.Status.Phase == corev1.PodRunning, podState(p), nil
	})
	if err != nil {
		return nil, err
	}
	if o.Node != "" && pod.Spec.NodeName != o.Node {
		return nil, fmt.Errorf("%s: the mover pod %s runs on node %s, not %s", what, c.Pod, pod.Spec.NodeName, o.Node)
	}
	clonePV, err := cs.CoreV1().PersistentVolumes().Get(ctx, clonePVC.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: clone volume: %w", what, err)
	}
	if fo.Node == "" {
		fo.Node = o.Node
	}
	f := &finder{cs: cs, o: fo, here: map[string][]*corev1.Pod{ns + "/" + c.PVC: {pod}}}
	v, reason, err := f.resolve(ctx, clonePVC, clonePV)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if reason != "" {
		return nil, fmt.Errorf("%s: clone PVC %s/%s: %s", what, ns, c.PVC, reason)
	}
	c.Volume = v
	return c, nil
}

// Cleanup deletes the mover pod, the clone claim and the snapshot, as far
// as they were created, with its own timeout even when ctx has ended.
// Objects already gone are fine; it can be called again after an error.
func (c *Clone) Cleanup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var errs []error
	del := func(kind, name string, fn func() error) string {
		if name == "" {
			return ""
		}
		if err := fn(); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", kind, c.Namespace, name, err))
			return name
		}
		return ""
	}
	bg := metav1.DeletePropagationBackground
	opts := metav1.DeleteOptions{PropagationPolicy: &bg}
	c.Pod = del("mover pod", c.Pod, func() error { return c.cs.CoreV1().Pods(c.Namespace).Delete(ctx, c.Pod, opts) })
	c.PVC = del("clone PVC", c.PVC, func() error {
		return c.cs.CoreV1().PersistentVolumeClaims(c.Namespace).Delete(ctx, c.PVC, opts)
	})
	c.Snapshot = del("VolumeSnapshot", c.Snapshot, func() error {
		return c.dyn.Resource(SnapshotGVR).Namespace(c.Namespace).Delete(ctx, c.Snapshot, opts)
	})
	return errors.Join(errs...)
}

// snapshotClass returns the VolumeSnapshotClass to use for driver.
func snapshotClass(ctx context.Context, dyn dynamic.Interface, o SnapshotOptions, driver string) (string, error) {
	check := func(c *unstructured.Unstructured) {
		if p, _, _ := unstructured.NestedString(c.Object, "deletionPolicy"); p == "Retain" {
			o.warn("VolumeSnapshotClass %s has deletionPolicy Retain: the storage system keeps every snapshot taken for a backup", c.GetName())
		}
	}
	if o.Class != "" {
		c, err := dyn.Resource(SnapshotClassGVR).Get(ctx, o.Class, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("VolumeSnapshotClass %s: %w", o.Class, err)
		}
		if d, _, _ := unstructured.NestedString(c.Object, "driver"); d != driver {
			return "", fmt.Errorf("VolumeSnapshotClass %s is for CSI driver %s, the volume's driver is %s", o.Class, d, driver)
		}
		check(c)
		return o.Class, nil
	}
	l, err := dyn.Resource(SnapshotClassGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list VolumeSnapshotClasses: %w", err)
	}
	var found []*unstructured.Unstructured
	for i := range l.Items {
		c := &l.Items[i]
		if d, _, _ := unstructured.NestedString(c.Object, "driver"); d == driver && c.GetAnnotations()[DefaultClassAnnotation] == "true" {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no default VolumeSnapshotClass for CSI driver %s: give a class, or mark one with the annotation %s: \"true\"", driver, DefaultClassAnnotation)
	case 1:
		check(found[0])
		return found[0].GetName(), nil
	}
	names := make([]string, len(found))
	for i, c := range found {
		names[i] = c.GetName()
	}
	return "", fmt.Errorf("several default VolumeSnapshotClasses for CSI driver %s (%s): give a class", driver, strings.Join(names, ", "))
}

// moverPod is the pod that keeps the clone claim mounted read-only on
// o.Node. It passes the restricted Pod Security Standard and tolerates
// every taint, as the node agent does.
func moverPod(ns, source, claim string, o SnapshotOptions, labels, annotations map[string]string, owner []metav1.OwnerReference) *corev1.Pod {
	no, yes := false, true
	uid := int64(65535)
	grace := int64(1)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: namePrefix("bunker-mover-", source), Namespace: ns,
			Labels: labels, Annotations: annotations, OwnerReferences: owner},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: &grace,
			AutomountServiceAccountToken:  &no,
			EnableServiceLinks:            &no,
			Tolerations:                   []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &uid, RunAsGroup: &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "mover",
				Image:           o.Image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				VolumeMounts:    []corev1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: true}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no,
					ReadOnlyRootFilesystem:   &yes,
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: true},
			}}},
		},
	}
	if o.Node != "" {
		// Affinity rather than spec.nodeName: the scheduler must see the
		// pod for a claim that binds on first consumer to be provisioned.
		p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{o.Node}}},
			}}},
		}}
	}
	return p
}

// podState describes why a pod is not running yet, for messages.
func podState(p *corev1.Pod) string {
	parts := []string{"phase " + string(p.Status.Phase)}
	if p.Spec.NodeName == "" {
		parts = append(parts, "not scheduled")
	}
	for _, c := range p.Status.Conditions {
		if c.Status == corev1.ConditionFalse && c.Message != "" {
			parts = append(parts, fmt.Sprintf("%s: %s", c.Type, c.Message))
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			parts = append(parts, fmt.Sprintf("container %s %s: %s", cs.Name, w.Reason, w.Message))
		}
	}
	return strings.Join(parts, "; ")
}

// waitFor polls get until it reports done, returning its value; after
// timeout it fails naming what and the last state get described.
func waitFor[T any](ctx context.Context, timeout time.Duration, what string, get func(context.Context) (T, bool, string, error)) (T, error) {
	var zero T
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	interval := 50 * time.Millisecond
	state := "not checked yet"
	for {
		v, done, st, err := get(wctx)
		switch {
		case err == nil:
			if done {
				return v, nil
			}
			state = st
		case wctx.Err() != nil:
			// The wait ended during the request.
		default:
			return zero, fmt.Errorf("%s: %w", what, err)
		}
		select {
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				return zero, fmt.Errorf("%s: %w", what, err)
			}
			return zero, fmt.Errorf("%s: not ready after %v: %s", what, timeout, state)
		case <-time.After(interval):
		}
		interval = min(interval*2, time.Second)
	}
}

// namePrefix is a generateName for an object made for the claim name:
// short enough for a label-sized name with the random suffix.
func namePrefix(prefix, name string) string {
	const max = 57
	s := prefix + name
	if len(s) > max {
		s = strings.TrimRight(s[:max], "-.")
	}
	return s + "-"
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
