package volume_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/bunkerbackup/bunker/internal/source/kube/volume"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// TestKube runs everything that needs an API server against one
// kube-apiserver; the test plays the controllers and the kubelet.
func TestKube(t *testing.T) {
	k := testsrv.Kube(t)
	cfg := k.Config()
	cs, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	dyn, err := dynamic.NewForConfig(cfg)
	must(t, err)
	kc := &kube{cs: cs, dyn: dyn}

	t.Run("Find", kc.testFind)
	t.Run("SnapshotAPI", kc.testSnapshotAPI)
	t.Run("SnapshotClone", kc.testSnapshotClone)
	t.Run("SnapshotNeverReady", kc.testSnapshotNeverReady)
	t.Run("CloneNeverBound", kc.testCloneNeverBound)
	t.Run("SnapshotRefused", kc.testSnapshotRefused)
	t.Run("HooksFromPods", kc.testHooksFromPods)
	t.Run("Exec", func(t *testing.T) { kc.testExec(t, cfg) })
	t.Run("ExecThroughKubelet", func(t *testing.T) { kc.testExecThroughKubelet(t, cfg) })
}

type kube struct {
	cs  kubernetes.Interface
	dyn dynamic.Interface
}

func (k *kube) namespace(t *testing.T, name string) {
	t.Helper()
	_, err := k.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	must(t, err)
}

// pv creates a persistent volume for the claim ns/claim.
func (k *kube) pv(t *testing.T, name string, src corev1.PersistentVolumeSource, ns, claim string, affinity *corev1.NodeSelector) *corev1.PersistentVolume {
	t.Helper()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: src,
			ClaimRef:               &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: ns, Name: claim},
			StorageClassName:       "fast",
		},
	}
	if affinity != nil {
		pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: affinity}
	}
	pv, err := k.cs.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{})
	must(t, err)
	return pv
}

// pvc creates a claim, bound to pv when it is not "" (acting as the
// persistent volume controller).
func (k *kube) pvc(t *testing.T, ns, name, pv string) *corev1.PersistentVolumeClaim {
	t.Helper()
	ctx := context.Background()
	sc := "fast"
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			StorageClassName: &sc,
			VolumeName:       pv,
		},
	}
	c, err := k.cs.CoreV1().PersistentVolumeClaims(ns).Create(ctx, c, metav1.CreateOptions{})
	must(t, err)
	if pv != "" {
		c = k.bind(t, c)
	}
	return c
}

func (k *kube) bind(t *testing.T, c *corev1.PersistentVolumeClaim) *corev1.PersistentVolumeClaim {
	t.Helper()
	c.Status.Phase = corev1.ClaimBound
	c, err := k.cs.CoreV1().PersistentVolumeClaims(c.Namespace).UpdateStatus(context.Background(), c, metav1.UpdateOptions{})
	must(t, err)
	return c
}

// pod creates a running pod on node that mounts the claims.
func (k *kube) pod(t *testing.T, ns, name, node string, annotations map[string]string, claims ...string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "app", Image: "app:1"}, {Name: "sidecar", Image: "side:1"}},
		},
	}
	for i, c := range claims {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "v" + string(rune('0'+i)),
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
	}
	p, err := k.cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	must(t, err)
	if node != "" {
		p.Status.Phase = corev1.PodRunning
		p, err = k.cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		must(t, err)
	}
	return p
}

func hostname(nodes ...string) *corev1.NodeSelector {
	return &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
		{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: nodes}}}}}
}

func (k *kube) testFind(t *testing.T) {
	ctx := context.Background()
	const ns = "find"
	k.namespace(t, ns)
	root := t.TempDir()
	for _, d := range []string{"data/hp", "data/hp2", "data/local", "data/zone"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	hostPath := func(p string) corev1.PersistentVolumeSource {
		return corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: p}}
	}
	local := func(p string) corev1.PersistentVolumeSource {
		return corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: p}}
	}
	csi := func(h string) corev1.PersistentVolumeSource {
		return corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "csi.example.com", VolumeHandle: h}}
	}
	k.pv(t, "find-hp", hostPath("/data/hp"), ns, "hp", nil)
	k.pvc(t, ns, "hp", "find-hp")
	k.pv(t, "find-hp2", hostPath("/data/hp2"), ns, "hp2", nil)
	k.pvc(t, ns, "hp2", "find-hp2")
	k.pod(t, ns, "other", "n2", nil, "hp2")
	k.pv(t, "find-local", local("/data/local"), ns, "local", hostname("n1"))
	k.pvc(t, ns, "local", "find-local")
	zone := &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
		{Key: "topology.kubernetes.io/zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"z1"}}}}}}
	k.pv(t, "find-zone", local("/data/zone"), ns, "zone", zone)
	k.pvc(t, ns, "zone", "find-zone")
	_, err := k.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n3",
		Labels: map[string]string{"topology.kubernetes.io/zone": "z1", corev1.LabelHostname: "n3"}}}, metav1.CreateOptions{})
	must(t, err)
	k.pvc(t, ns, "unbound", "")
	k.pv(t, "find-nfs", corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "10.0.0.1", Path: "/export"}}, ns, "nfs", nil)
	k.pvc(t, ns, "nfs", "find-nfs")
	k.pv(t, "find-csi", csi("h1"), ns, "csi", nil)
	k.pvc(t, ns, "csi", "find-csi")
	app := k.pod(t, ns, "app", "n1", nil, "csi")
	fo := volume.FindOptions{NodeRoot: root}
	csiPath := fo.PodVolumePath(string(app.UID), "find-csi")
	must(t, os.MkdirAll(csiPath, 0o755))
	k.pv(t, "find-csi2", csi("h2"), ns, "csi-nopod", nil)
	k.pvc(t, ns, "csi-nopod", "find-csi2")
	// Another namespace, filtered out.
	k.namespace(t, "find-other")
	k.pv(t, "find-other-hp", hostPath("/data/hp"), "find-other", "hp", nil)
	k.pvc(t, "find-other", "hp", "find-other-hp")

	onlyFind := func(n string) bool { return n == ns }
	type want struct {
		vols    []volume.Volume
		skipped []volume.Skipped
	}
	hp := volume.Volume{Namespace: ns, PVC: "hp", PV: "find-hp", Kind: volume.KindHostPath, Path: filepath.Join(root, "data/hp")}
	hp2 := volume.Volume{Namespace: ns, PVC: "hp2", PV: "find-hp2", Node: "n2", Kind: volume.KindHostPath, Path: filepath.Join(root, "data/hp2")}
	loc := volume.Volume{Namespace: ns, PVC: "local", PV: "find-local", Node: "n1", Kind: volume.KindLocal, Path: filepath.Join(root, "data/local")}
	zon := volume.Volume{Namespace: ns, PVC: "zone", PV: "find-zone", Node: "n3", Kind: volume.KindLocal, Path: filepath.Join(root, "data/zone")}
	cv := volume.Volume{Namespace: ns, PVC: "csi", PV: "find-csi", Node: "n1", Kind: volume.KindCSI, Driver: "csi.example.com", Pod: "app", Path: csiPath}
	skip := func(pvc, reason string) volume.Skipped {
		return volume.Skipped{Namespace: ns, PVC: pvc, Reason: reason}
	}
	with := func(v volume.Volume, node string) volume.Volume { v.Node = node; return v }
	for node, w := range map[string]want{
		"n1": {
			vols: []volume.Volume{cv, with(hp, "n1"), loc},
			skipped: []volume.Skipped{skip("csi-nopod", "csi: not mounted on this node"), skip("hp2", "on node n2"),
				skip("nfs", "nfs: not supported"), skip("unbound", "not bound"), skip("zone", "not on this node (node affinity)")},
		},
		"n2": {
			vols: []volume.Volume{with(hp, "n2"), hp2},
			skipped: []volume.Skipped{skip("csi", "csi: not mounted on this node"), skip("csi-nopod", "csi: not mounted on this node"),
				skip("local", "on node n1"), skip("nfs", "nfs: not supported"), skip("unbound", "not bound"), skip("zone", "not on this node (node affinity)")},
		},
		"n3": {
			vols: []volume.Volume{with(hp, "n3"), zon},
			skipped: []volume.Skipped{skip("csi", "csi: not mounted on this node"), skip("csi-nopod", "csi: not mounted on this node"),
				skip("hp2", "on node n2"), skip("local", "on node n1"), skip("nfs", "nfs: not supported"), skip("unbound", "not bound")},
		},
		"": {
			vols: []volume.Volume{cv, hp, hp2, loc, with(zon, "")},
			skipped: []volume.Skipped{skip("csi-nopod", "csi: not mounted by any pod"),
				skip("nfs", "nfs: not supported"), skip("unbound", "not bound")},
		},
	} {
		fo := volume.FindOptions{Node: node, NodeRoot: root, Namespace: onlyFind}
		vols, skipped, err := volume.Find(ctx, k.cs, fo)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(vols, w.vols) {
			t.Errorf("node %q: volumes\n%+v\nwant\n%+v", node, vols, w.vols)
		}
		if !reflect.DeepEqual(skipped, w.skipped) {
			t.Errorf("node %q: skipped\n%+v\nwant\n%+v", node, skipped, w.skipped)
		}
	}

	// Without the kubelet's directory the CSI volume is skipped with a hint.
	must(t, os.RemoveAll(csiPath))
	_, skipped, err := volume.Find(ctx, k.cs, volume.FindOptions{Node: "n1", NodeRoot: root, Namespace: onlyFind})
	must(t, err)
	if len(skipped) == 0 || skipped[0].PVC != "csi" || !strings.Contains(skipped[0].Reason, "mountPropagation") {
		t.Errorf("skipped: %+v", skipped)
	}
	if _, _, err := volume.Find(ctx, k.cs, volume.FindOptions{NodeRoot: "relative"}); err == nil {
		t.Error("a relative node root was accepted")
	}
}

func (k *kube) testSnapshotAPI(t *testing.T) {
	ctx := context.Background()
	ok, err := volume.HasSnapshotAPI(ctx, k.cs.Discovery())
	if err != nil || ok {
		t.Fatalf("before the CRDs: %v %v", ok, err)
	}
	k.installSnapshotCRDs(t)
	ok, err = volume.HasSnapshotAPI(ctx, k.cs.Discovery())
	if err != nil || !ok {
		t.Fatalf("after the CRDs: %v %v", ok, err)
	}
	k.snapshotClass(t, "csi-default", "csi.example.com", true, "Delete")
	k.snapshotClass(t, "csi-other", "csi.example.com", false, "Delete")
	k.snapshotClass(t, "elsewhere", "other.example.com", true, "Delete")
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

func (k *kube) installSnapshotCRDs(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join("testdata", "snapshot-crds.yaml"))
	must(t, err)
	for _, doc := range strings.Split(string(b), "\n---\n") {
		j, err := yaml.YAMLToJSON([]byte(doc))
		must(t, err)
		var u unstructured.Unstructured
		must(t, u.UnmarshalJSON(j))
		_, err = k.dyn.Resource(crdGVR).Create(ctx, &u, metav1.CreateOptions{})
		must(t, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := volume.HasSnapshotAPI(ctx, k.cs.Discovery())
		_, lerr := k.dyn.Resource(volume.SnapshotClassGVR).List(ctx, metav1.ListOptions{})
		if err == nil && ok && lerr == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the snapshot CRDs are not served: %v %v %v", ok, err, lerr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (k *kube) snapshotClass(t *testing.T, name, driver string, isDefault bool, policy string) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
		"metadata": map[string]any{"name": name}, "driver": driver, "deletionPolicy": policy,
	}}
	if isDefault {
		u.SetAnnotations(map[string]string{volume.DefaultClassAnnotation: "true"})
	}
	_, err := k.dyn.Resource(volume.SnapshotClassGVR).Create(context.Background(), u, metav1.CreateOptions{})
	must(t, err)
}

// csiSource makes ns with a bound CSI claim "data" of 1Gi.
func (k *kube) csiSource(t *testing.T, ns, driver string) {
	t.Helper()
	k.namespace(t, ns)
	k.pv(t, ns+"-src", corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: driver, VolumeHandle: ns}}, ns, "data", nil)
	k.pvc(t, ns, "data", ns+"-src")
}

// controllers plays the snapshot controller, the CSI provisioner, the
// scheduler and the kubelet for one round; each only as far as its flag
// says.
type controllers struct {
	snapshots, provision, schedule, kubelet bool
	fo                                      volume.FindOptions
}

func (k *kube) play(t *testing.T, ns string, c controllers) {
	t.Helper()
	ctx := context.Background()
	if c.snapshots {
		l, err := k.dyn.Resource(volume.SnapshotGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
		must(t, err)
		for _, s := range l.Items {
			if ready, _, _ := unstructured.NestedBool(s.Object, "status", "readyToUse"); ready {
				continue
			}
			src, _, _ := unstructured.NestedString(s.Object, "spec", "source", "persistentVolumeClaimName")
			class, _, _ := unstructured.NestedString(s.Object, "spec", "volumeSnapshotClassName")
			if src != "data" || class != "csi-default" || s.GetLabels()[volume.LabelTemporary] != "true" {
				t.Errorf("snapshot %s: source %q class %q labels %v", s.GetName(), src, class, s.GetLabels())
			}
			must(t, unstructured.SetNestedField(s.Object, true, "status", "readyToUse"))
			must(t, unstructured.SetNestedField(s.Object, "2Gi", "status", "restoreSize"))
			_, err := k.dyn.Resource(volume.SnapshotGVR).Namespace(ns).UpdateStatus(ctx, &s, metav1.UpdateOptions{})
			must(t, err)
		}
	}
	if c.provision {
		l, err := k.cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
		must(t, err)
		for _, p := range l.Items {
			ds := p.Spec.DataSource
			if ds == nil || ds.Kind != "VolumeSnapshot" || p.Spec.VolumeName != "" {
				continue
			}
			size := p.Spec.Resources.Requests[corev1.ResourceStorage]
			if *p.Spec.StorageClassName != "fast" || size.String() != "2Gi" || len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "VolumeSnapshot" {
				t.Errorf("clone PVC %s: class %q size %s owners %+v", p.Name, *p.Spec.StorageClassName, size.String(), p.OwnerReferences)
			}
			pv := k.pv(t, ns+"-clone", corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "csi.example.com", VolumeHandle: "clone"}}, ns, p.Name, nil)
			p.Spec.VolumeName = pv.Name
			np, err := k.cs.CoreV1().PersistentVolumeClaims(ns).Update(ctx, &p, metav1.UpdateOptions{})
			must(t, err)
			k.bind(t, np)
		}
	}
	if !c.schedule && !c.kubelet {
		return
	}
	l, err := k.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	must(t, err)
	for _, p := range l.Items {
		switch {
		case c.schedule && p.Spec.NodeName == "":
			aff := p.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchFields[0]
			if aff.Key != "metadata.name" || aff.Values[0] != "n1" {
				t.Errorf("mover pod affinity %+v", aff)
			}
			must(t, k.cs.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: ns},
				Target: corev1.ObjectReference{Kind: "Node", Name: "n1"}}, metav1.CreateOptions{}))
		case c.kubelet && p.Spec.NodeName != "" && p.Status.Phase != corev1.PodRunning:
			claim := p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName
			pvc, err := k.cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
			must(t, err)
			if pvc.Status.Phase != corev1.ClaimBound {
				continue
			}
			dir := c.fo.PodVolumePath(string(p.UID), pvc.Spec.VolumeName)
			write(t, filepath.Join(dir, "hello.txt"), []byte("snapshot data"), 0o644)
			p.Status.Phase = corev1.PodRunning
			_, err = k.cs.CoreV1().Pods(ns).UpdateStatus(ctx, &p, metav1.UpdateOptions{})
			must(t, err)
		}
	}
}

type cloneResult struct {
	c   *volume.Clone
	err error
}

// runClone runs SnapshotClone while the test plays the controllers.
func (k *kube) runClone(t *testing.T, ns string, o volume.SnapshotOptions, c controllers) (*volume.Clone, error) {
	t.Helper()
	done := make(chan cloneResult, 1)
	go func() {
		cl, err := volume.SnapshotClone(context.Background(), k.cs, k.dyn, ns, "data", o, c.fo)
		done <- cloneResult{cl, err}
	}()
	for {
		select {
		case r := <-done:
			return r.c, r.err
		case <-time.After(20 * time.Millisecond):
		}
		k.play(t, ns, c)
	}
}

// assertCleanedUp checks that nothing SnapshotClone made is left in ns,
// apart from objects whose deletion a missing controller would finish.
func (k *kube) assertCleanedUp(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	snaps, err := k.dyn.Resource(volume.SnapshotGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
	must(t, err)
	if len(snaps.Items) != 0 {
		t.Errorf("%d snapshots left", len(snaps.Items))
	}
	ours := metav1.ListOptions{LabelSelector: volume.LabelTemporary + "=true"}
	pvcs, err := k.cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, ours)
	must(t, err)
	for _, p := range pvcs.Items {
		if p.DeletionTimestamp == nil {
			t.Errorf("PVC %s left", p.Name)
		}
	}
	pods, err := k.cs.CoreV1().Pods(ns).List(ctx, ours)
	must(t, err)
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			t.Errorf("pod %s left", p.Name)
		}
	}
}

func (k *kube) testSnapshotClone(t *testing.T) {
	const ns = "snap"
	k.csiSource(t, ns, "csi.example.com")
	fo := volume.FindOptions{NodeRoot: t.TempDir()}
	c, err := k.runClone(t, ns, volume.SnapshotOptions{Node: "n1", Timeout: 30 * time.Second}, controllers{snapshots: true, provision: true, schedule: true, kubelet: true, fo: fo})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pod, err := k.cs.CoreV1().Pods(ns).Get(ctx, c.Pod, metav1.GetOptions{})
	must(t, err)
	want := volume.Volume{Namespace: ns, PVC: c.PVC, PV: ns + "-clone", Node: "n1", Kind: volume.KindCSI, Driver: "csi.example.com", Pod: c.Pod,
		Path: fo.PodVolumePath(string(pod.UID), ns+"-clone")}
	if c.Volume != want || c.Namespace != ns || !strings.HasPrefix(c.Snapshot, "bunker-data-") || !strings.HasPrefix(c.PVC, "bunker-clone-data-") {
		t.Errorf("clone %+v\nwant volume %+v", c, want)
	}
	if b, err := os.ReadFile(filepath.Join(c.Volume.Path, "hello.txt")); err != nil || string(b) != "snapshot data" {
		t.Errorf("clone data: %q %v", b, err)
	}
	// The mover pod mounts the clone read-only and runs unprivileged.
	v := pod.Spec.Volumes[0].PersistentVolumeClaim
	sc := pod.Spec.Containers[0].SecurityContext
	if v.ClaimName != c.PVC || !v.ReadOnly || !pod.Spec.Containers[0].VolumeMounts[0].ReadOnly || pod.Spec.Containers[0].Image != volume.DefaultMoverImage ||
		!*pod.Spec.SecurityContext.RunAsNonRoot || *sc.AllowPrivilegeEscalation || len(pod.OwnerReferences) != 1 {
		t.Errorf("mover pod: %+v", pod.Spec)
	}
	must(t, c.Cleanup(ctx))
	k.assertCleanedUp(t, ns)
	must(t, c.Cleanup(ctx)) // again: nothing to do
}

func (k *kube) testSnapshotNeverReady(t *testing.T) {
	const ns = "snap-slow"
	k.csiSource(t, ns, "csi.example.com")
	_, err := k.runClone(t, ns, volume.SnapshotOptions{Node: "n1", Timeout: time.Second}, controllers{})
	if err == nil || !strings.Contains(err.Error(), "VolumeSnapshot "+ns+"/bunker-data-") || !strings.Contains(err.Error(), "not ready after 1s") {
		t.Fatalf("err = %v", err)
	}
	k.assertCleanedUp(t, ns)
}

// testCloneNeverBound fails half-way: the snapshot is ready, the clone
// claim and the mover pod exist, but no volume is provisioned.
func (k *kube) testCloneNeverBound(t *testing.T) {
	const ns = "snap-unbound"
	k.csiSource(t, ns, "csi.example.com")
	_, err := k.runClone(t, ns, volume.SnapshotOptions{Node: "n1", Timeout: time.Second}, controllers{snapshots: true})
	if err == nil || !strings.Contains(err.Error(), "clone PVC "+ns+"/bunker-clone-data-") || !strings.Contains(err.Error(), "phase Pending") {
		t.Fatalf("err = %v", err)
	}
	k.assertCleanedUp(t, ns)
}

// testSnapshotRefused: claims that cannot be snapshotted fail before
// anything is created.
func (k *kube) testSnapshotRefused(t *testing.T) {
	ctx := context.Background()
	const ns = "snap-refused"
	k.namespace(t, ns)
	k.pv(t, ns+"-hp", corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/x"}}, ns, "data", nil)
	k.pvc(t, ns, "data", ns+"-hp")
	k.pv(t, ns+"-nodefault", corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "nodefault.example.com", VolumeHandle: "x"}}, ns, "nodefault", nil)
	k.pvc(t, ns, "nodefault", ns+"-nodefault")
	k.pvc(t, ns, "pending", "")
	for _, tc := range []struct {
		pvc, class, want string
	}{
		{"data", "", "not CSI"},
		{"nodefault", "", "no default VolumeSnapshotClass for CSI driver nodefault.example.com"},
		{"nodefault", "csi-default", "is for CSI driver csi.example.com"},
		{"nodefault", "nope", "VolumeSnapshotClass nope"},
		{"pending", "", "not bound"},
		{"missing", "", "not found"},
	} {
		_, err := volume.SnapshotClone(ctx, k.cs, k.dyn, ns, tc.pvc, volume.SnapshotOptions{Class: tc.class}, volume.FindOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), ns+"/"+tc.pvc) {
			t.Errorf("%s with class %q: %v, want %q", tc.pvc, tc.class, err, tc.want)
		}
	}
	k.assertCleanedUp(t, ns)
}

func (k *kube) testHooksFromPods(t *testing.T) {
	ctx := context.Background()
	const ns = "hooks"
	k.namespace(t, ns)
	pre := func(f string) string { return volume.HookAnnotation(volume.PhasePre, f) }
	post := func(f string) string { return volume.HookAnnotation(volume.PhasePost, f) }
	k.pod(t, ns, "db", "n1", map[string]string{
		pre("command"): `["/bin/sh", "-c", "fsfreeze -f /data"]`, pre("container"): "app", pre("timeout"): "45s", pre("on-error"): "Continue",
		post("command"): "fsfreeze -u '/data'",
	})
	k.pod(t, ns, "web", "n1", nil)
	k.pod(t, ns, "pending", "", map[string]string{pre("command"): "true"})
	k.namespace(t, "hooks-bad")
	k.pod(t, "hooks-bad", "broken", "n1", map[string]string{pre("command"): "sync", pre("timeout"): "soon"})

	hooks, err := volume.HooksFromPods(ctx, k.cs, func(n string) bool { return n == ns })
	must(t, err)
	want := []volume.Hook{
		{Namespace: ns, Pod: "db", Container: "app", Command: []string{"/bin/sh", "-c", "fsfreeze -f /data"}, Timeout: 45 * time.Second, OnError: volume.OnErrorContinue, Phase: volume.PhasePre},
		{Namespace: ns, Pod: "db", Command: []string{"fsfreeze", "-u", "/data"}, Phase: volume.PhasePost},
	}
	if !reflect.DeepEqual(hooks, want) {
		t.Errorf("hooks\n%+v\nwant\n%+v", hooks, want)
	}
	_, err = volume.HooksFromPods(ctx, k.cs, func(n string) bool { return n == "hooks-bad" })
	if err == nil || !strings.Contains(err.Error(), "hooks-bad/broken") || !strings.Contains(err.Error(), pre("timeout")) {
		t.Errorf("bad annotation: %v", err)
	}
}

// testExec covers what an API server without a kubelet can answer: the
// command itself cannot run here (wsexec_test.go covers the stream).
func (k *kube) testExec(t *testing.T, rc *rest.Config) {
	ctx := context.Background()
	const ns = "hooks"
	k.pod(t, ns, "ghost", "ghost-node", nil)
	k.pod(t, ns, "waiting", "", nil)
	for _, tc := range []struct {
		hook volume.Hook
		want []string
	}{
		{volume.Hook{Namespace: ns, Pod: "nope", Command: []string{"true"}}, []string{"pod hooks/nope not found"}},
		{volume.Hook{Namespace: ns, Pod: "waiting", Command: []string{"true"}}, []string{"hooks/waiting", "not Running"}},
		{volume.Hook{Namespace: ns, Pod: "ghost", Container: "db", Command: []string{"true"}}, []string{"hooks/ghost", `no container "db"`, "app, sidecar"}},
		// The exec request reaches the API server, which has no node
		// (and no kubelet) to pass it to.
		{volume.Hook{Namespace: ns, Pod: "ghost", Command: []string{"true"}, Timeout: 10 * time.Second}, []string{"hook hooks/ghost:app: exec true", "ghost-node"}},
		{volume.Hook{Namespace: ns, Pod: "ghost", Command: nil}, []string{"no command"}},
	} {
		_, _, err := volume.Exec(ctx, rc, k.cs, tc.hook)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %v, want %q", tc.hook, err, w)
			}
		}
	}
	err := volume.RunHooks(ctx, rc, k.cs, []volume.Hook{
		{Namespace: ns, Pod: "nope", Command: []string{"a"}, OnError: volume.OnErrorContinue},
		{Namespace: ns, Pod: "nope2", Command: []string{"b"}},
		{Namespace: ns, Pod: "nope3", Command: []string{"c"}},
	}, func(s string) {
		if !strings.Contains(s, "hooks/nope ") {
			t.Errorf("warning %q", s)
		}
	})
	if err == nil || !strings.Contains(err.Error(), "hooks/nope2") {
		t.Errorf("RunHooks: %v", err)
	}
}

// testExecThroughKubelet runs hooks through the real API server, which
// passes them on to a fake kubelet speaking the exec WebSocket protocol.
// The client offers v4 only here: for v5 the API server would translate
// the stream to SPDY, which the fake kubelet does not speak.
func (k *kube) testExecThroughKubelet(t *testing.T, rc *rest.Config) {
	ctx := context.Background()
	defer volume.SetExecProtocols("v4.channel.k8s.io")()
	const ns, pod = "hooks", "kpod"
	kubelet := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/exec/"+ns+"/"+pod+"/app" || q.Get("output") != "1" || q.Get("error") != "1" || q.Get("input") != "" {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		serveExec(t, w, r, q["command"])
	}))
	t.Cleanup(kubelet.Close)
	port, err := strconv.Atoi(kubelet.URL[strings.LastIndex(kubelet.URL, ":")+1:])
	must(t, err)
	node, err := k.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kubelet-node"}}, metav1.CreateOptions{})
	must(t, err)
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(port)
	_, err = k.cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	must(t, err)
	k.pod(t, ns, pod, "kubelet-node", nil)

	out, errOut, err := volume.Exec(ctx, rc, k.cs, volume.Hook{Namespace: ns, Pod: pod, Command: []string{"echo", "through", "kubelet"}, Timeout: 10 * time.Second})
	if err != nil || !strings.HasSuffix(out, "xhello through kubelet\n") || errOut != "a warning" {
		t.Errorf("echo: %q, %q, %v", out[max(len(out)-30, 0):], errOut, err)
	}
	_, _, err = volume.Exec(ctx, rc, k.cs, volume.Hook{Namespace: ns, Pod: pod, Command: []string{"fail"}, Timeout: 10 * time.Second})
	var ee *volume.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || !strings.Contains(err.Error(), "hook hooks/kpod:app: fail exited with code 3: oops; it broke") {
		t.Errorf("fail: %v", err)
	}
}
