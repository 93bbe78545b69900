package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testsrv"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

var backupGVR = schema.GroupVersionResource{Group: "bunker.dev", Version: "v1alpha1", Resource: "backups"}

// TestOperator runs the real binary as the operator against a real API
// server: a Backup object becomes a snapshot and a Completed status; the
// operator is killed with SIGKILL mid-backup and started again, and the
// backup finishes once, cleanly; a Schedule produces backups.
func TestOperator(t *testing.T) {
	k := testsrv.Kube(t)
	dyn, err := dynamic.NewForConfig(k.Config())
	must(t, err)
	r := initRepo(t)
	r.env = append(r.env, "KUBECONFIG="+k.Kubeconfig)

	// A namespace whose volume makes the backup last long enough to be
	// killed in the middle.
	vol := filepath.Join(t.TempDir(), "vol")
	must(t, os.MkdirAll(vol, 0o755))
	writeRandomFile(t, filepath.Join(vol, "big.bin"), 7, 768<<20)
	apply(t, dyn, fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: app}
data: {mode: production}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-app}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  hostPath: {path: %q}
  claimRef: {namespace: app, name: data}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: app}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  volumeName: pv-app
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Secret
metadata: {name: repo-password, namespace: app}
stringData: {password: %q}
`, vol, testPassword))
	pvcGVR := schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	pvc, err := dyn.Resource(pvcGVR).Namespace("app").Get(context.Background(), "data", metav1.GetOptions{})
	must(t, err)
	must(t, unstructured.SetNestedField(pvc.Object, "Bound", "status", "phase"))
	_, err = dyn.Resource(pvcGVR).Namespace("app").UpdateStatus(context.Background(), pvc, metav1.UpdateOptions{})
	must(t, err)

	// The operator installs its CRDs.
	op := startOperator(t, r, k, "--install-crds")
	apply(t, dyn, fmt.Sprintf(`
apiVersion: bunker.dev/v1alpha1
kind: BackupRepository
metadata: {name: main, namespace: app}
spec:
  url: %q
  passwordSecretRef: {name: repo-password, key: password}
---
apiVersion: bunker.dev/v1alpha1
kind: Schedule
metadata: {name: hourly, namespace: app}
spec:
  schedule: "@every 1m"
  template: {repository: main, includeNamespaces: [app], excludeResources: [secrets]}
---
apiVersion: bunker.dev/v1alpha1
kind: Backup
metadata: {name: first, namespace: app}
spec: {repository: main, includeNamespaces: [app], volumes: true}
`, r.dir))

	// Kill the operator once the backup runs and data is being written.
	waitFor(t, 2*time.Minute, "backup first running and writing packs", func() bool {
		return backupStatus(t, dyn, "first")["phase"] == "Running" && len(repoFiles(t, r.dir, "packs")) > 0
	})
	op.Kill()
	if st := backupStatus(t, dyn, "first"); st["phase"] != "Running" {
		t.Fatalf("the backup finished before the operator could be killed: %v", st)
	}
	startOperator(t, r, k)
	var st map[string]any
	waitFor(t, 3*time.Minute, "backup first completed", func() bool {
		st = backupStatus(t, dyn, "first")
		return st["phase"] == "Completed" || st["phase"] == "Failed"
	})
	if st["phase"] != "Completed" || st["snapshotID"] == "" {
		t.Fatalf("status after the restart: %v", st)
	}
	if a, _ := st["attempts"].(int64); a != 2 {
		t.Errorf("attempts = %v, want 2 (one killed, one finished)", st["attempts"])
	}
	b, err := dyn.Resource(backupGVR).Namespace("app").Get(context.Background(), "first", metav1.GetOptions{})
	must(t, err)
	tag := fmt.Sprintf("bunker.dev/backup=app/first/%s", b.GetUID())
	ids := strings.Fields(r.mustRun("snapshots", "--tag", tag, "--json").Stdout)
	if n := strings.Count(strings.Join(ids, ""), `"short_id"`); n != 1 {
		t.Errorf("%d snapshots carry the backup's tag, want 1", n)
	}
	ls := r.mustRun("ls", fmt.Sprint(st["snapshotID"])).Stdout
	if !strings.Contains(ls, "/volumes/app/data/big.bin") || !strings.Contains(ls, "/namespaces/app/core/configmaps/settings.json") {
		t.Errorf("snapshot lacks the volume or the objects:\n%s", ls)
	}
	r.mustRun("check")

	// The schedule made a backup by now or within the next minute.
	waitFor(t, 3*time.Minute, "a scheduled backup", func() bool {
		list, err := dyn.Resource(backupGVR).Namespace("app").List(context.Background(), metav1.ListOptions{LabelSelector: "bunker.dev/schedule=hourly"})
		must(t, err)
		for _, b := range list.Items {
			if p, _, _ := unstructured.NestedString(b.Object, "status", "phase"); p == "Completed" {
				return true
			}
		}
		return false
	})
	r.mustRun("check")
}

// startOperator starts "bunker operator" as its own process; the test's
// end stops it.
func startOperator(t *testing.T, r *repo, k *testsrv.KubeServer, extra ...string) *testsrv.Process {
	t.Helper()
	// The test is the cluster's admin backing up namespace app into a
	// local repository, which a tenant's namespace may not use.
	args := append([]string{"operator", "--kubeconfig", k.Kubeconfig, "--metrics-addr", "0", "--health-addr", "0", "--admin-namespace", "app"}, extra...)
	cmd := exec.Command(bunkerBin, args...)
	cmd.Env = r.env
	return testsrv.Start(t, "bunker operator", cmd)
}

func apply(t *testing.T, dyn dynamic.Interface, docs string) {
	t.Helper()
	for _, doc := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var obj map[string]any
		must(t, yaml.Unmarshal([]byte(doc), &obj))
		u := &unstructured.Unstructured{Object: obj}
		gvk := u.GroupVersionKind()
		gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: strings.ToLower(gvk.Kind) + "s"}
		if gvk.Kind == "BackupRepository" {
			gvr.Resource = "backuprepositories"
		}
		var ri dynamic.ResourceInterface = dyn.Resource(gvr)
		if ns := u.GetNamespace(); ns != "" {
			ri = dyn.Resource(gvr).Namespace(ns)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := ri.Create(context.Background(), u, metav1.CreateOptions{})
			if err == nil {
				break
			}
			// A CRD just installed may not be served yet.
			if time.Now().After(deadline) || !strings.Contains(err.Error(), "could not find the requested resource") {
				t.Fatalf("create %s %s: %v", gvk.Kind, u.GetName(), err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func backupStatus(t *testing.T, dyn dynamic.Interface, name string) map[string]any {
	t.Helper()
	b, err := dyn.Resource(backupGVR).Namespace("app").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	st, _, _ := unstructured.NestedMap(b.Object, "status")
	if st == nil {
		st = map[string]any{}
	}
	return st
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
