package operator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

var update = flag.Bool("update", false, "copy the CRDs into deploy/kubernetes/crds and deploy/helm/bunker/crds")

const deployDir = "../../deploy/kubernetes"

// TestDeployCRDs fails when deploy/kubernetes/crds or the Helm chart's
// crds/ is not a copy of the embedded CRDs (-update copies them).
func TestDeployCRDs(t *testing.T) {
	want := CRDFiles()
	if len(want) != 4 {
		t.Fatalf("%d embedded CRDs, want 4", len(want))
	}
	for _, dir := range []string{filepath.Join(deployDir, "crds"), filepath.Join(chartDir, "crds")} {
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, b := range want {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			seen[e.Name()] = true
			if w, ok := want[e.Name()]; !ok {
				t.Errorf("%s/%s is not an operator CRD", dir, e.Name())
			} else if !bytes.Equal(b, w) {
				t.Errorf("%s/%s differs from internal/operator/crds (go test ./internal/operator -run TestDeployCRDs -update)", dir, e.Name())
			}
		}
		for name := range want {
			if !seen[name] {
				t.Errorf("%s/%s is missing (go test ./internal/operator -run TestDeployCRDs -update)", dir, name)
			}
		}
	}
}

// manifests returns every object in the YAML files under deploy/kubernetes
// by file, and the kustomization.
func manifests(t *testing.T) (map[string][]*unstructured.Unstructured, map[string]any) {
	t.Helper()
	objs := map[string][]*unstructured.Unstructured{}
	var kustomization map[string]any
	err := filepath.WalkDir(deployDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		rel, _ := filepath.Rel(deployDir, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range bytes.Split(b, []byte("\n---\n")) {
			doc = bytes.TrimPrefix(doc, []byte("---\n"))
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				t.Errorf("%s document %d: %v", rel, i, err)
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(j, &m); err != nil || m == nil {
				t.Errorf("%s document %d: not an object", rel, i)
				continue
			}
			if rel == "kustomization.yaml" {
				kustomization = m
				continue
			}
			u := &unstructured.Unstructured{Object: m}
			if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
				t.Errorf("%s document %d: no apiVersion, kind or name", rel, i)
				continue
			}
			objs[rel] = append(objs[rel], u)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return objs, kustomization
}

// TestCRDs installs the CRDs and the manifests in a real API server and
// checks that it refuses invalid objects.
func TestCRDs(t *testing.T) {
	e := newEnv(t)
	const ns = "crds"
	e.namespace(ns)

	t.Run("manifests apply", func(t *testing.T) {
		objs, kust := manifests(t)
		// Everything but the optional restore binding is in the
		// kustomization, and everything it names exists.
		var listed []string
		res, _ := kust["resources"].([]any)
		for _, r := range res {
			listed = append(listed, r.(string))
		}
		for file := range objs {
			if file != "restore-binding.yaml" && !slices.Contains(listed, filepath.ToSlash(file)) {
				t.Errorf("kustomization.yaml does not list %s", file)
			}
		}
		for _, r := range listed {
			if _, ok := objs[r]; !ok {
				t.Errorf("kustomization.yaml lists %s, which holds no objects", r)
			}
		}
		// Namespace and CRDs first, then the rest, as kubectl apply -k does.
		files := make([]string, 0, len(objs))
		for f := range objs {
			files = append(files, f)
		}
		rank := func(f string) int {
			switch {
			case f == "namespace.yaml":
				return 0
			case strings.HasPrefix(f, "crds/"):
				return 1
			}
			return 2
		}
		slices.SortFunc(files, func(a, b string) int {
			if c := cmp.Compare(rank(a), rank(b)); c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		for _, f := range files {
			for _, u := range objs[f] {
				if err := e.c.Apply(e.ctx(), client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("test"), client.ForceOwnership); err != nil {
					t.Errorf("%s: apply %s %s: %v", f, u.GetKind(), u.GetName(), err)
				}
			}
		}
		// The DaemonSet mounts what the brief asks for.
		for _, u := range objs["agent.yaml"] {
			b, _ := json.Marshal(u.Object)
			for _, s := range []string{`"/var/lib/kubelet"`, `"mountPath":"/host"`, `"fieldPath":"spec.nodeName"`, `"args":["agent"]`} {
				if !bytes.Contains(b, []byte(s)) {
					t.Errorf("agent.yaml: no %s", s)
				}
			}
		}
	})

	t.Run("printer columns", func(t *testing.T) {
		want := map[string][]string{
			"backuprepositories": {"URL", "Phase", "Checked", "Age"},
			"backups":            {"Repository", "Phase", "Snapshot", "Objects", "Age"},
			"schedules":          {"Schedule", "Suspend", "Last", "Backup", "Age"},
			"restores":           {"Repository", "Snapshot", "Phase", "Restored", "Skipped", "Failed", "Age"},
		}
		cs, err := kubernetes.NewForConfig(e.k.Config())
		if err != nil {
			t.Fatal(err)
		}
		for res, cols := range want {
			// What kubectl get asks for: a Table.
			raw, err := cs.RESTClient().Get().AbsPath("/apis/bunker.dev/v1alpha1/namespaces/"+ns+"/"+res).
				SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(e.ctx())
			if err != nil {
				t.Fatalf("%s as a table: %v", res, err)
			}
			var table metav1.Table
			if err := json.Unmarshal(raw, &table); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range table.ColumnDefinitions {
				if c.Priority == 0 && c.Name != "Name" {
					got = append(got, c.Name)
				}
			}
			if !slices.Equal(got, cols) {
				t.Errorf("%s columns %q, want %q", res, got, cols)
			}
		}
	})

	t.Run("defaults", func(t *testing.T) {
		r := &v1alpha1.Restore{ObjectMeta: metav1.ObjectMeta{Name: "defaults", Namespace: ns},
			Spec: v1alpha1.RestoreSpec{Repository: "repo", Snapshot: "latest"}}
		e.create(r)
		if r.Spec.Existing != v1alpha1.ExistingSkip {
			t.Errorf("existing defaults to %q", r.Spec.Existing)
		}
	})

	t.Run("invalid objects", func(t *testing.T) {
		long := strings.Repeat("s", 49)
		for _, tc := range []struct {
			name, kind, objName, spec, want string
		}{
			{"backup without repository", "Backup", "b", `{}`, `spec.repository: Required value`},
			{"backup bad repository name", "Backup", "b", `{"repository":"Bad_Name"}`, `spec.repository: Invalid value`},
			{"backup tag with a comma", "Backup", "b", `{"repository":"r","tags":["a,b"]}`, `spec.tags[0]: Invalid value`},
			{"backup namespace glob", "Backup", "b", `{"repository":"r","includeNamespaces":["a b"]}`, `spec.includeNamespaces[0]: Invalid value`},
			{"restore bad existing", "Restore", "r", `{"repository":"r","snapshot":"latest","existing":"sometimes"}`, `spec.existing: Unsupported value: "sometimes"`},
			{"restore snapshot and backup", "Restore", "r", `{"repository":"r","snapshot":"latest","backupName":"b"}`, `give exactly one of snapshot and backupName`},
			{"restore neither", "Restore", "r", `{"repository":"r"}`, `give exactly one of snapshot and backupName`},
			{"restore bad snapshot", "Restore", "r", `{"repository":"r","snapshot":"--all"}`, `spec.snapshot: Invalid value`},
			{"restore bad mapping", "Restore", "r", `{"repository":"r","snapshot":"latest","namespaceMapping":{"a":"B C"}}`, `spec.namespaceMapping.a: Invalid value`},
			{"schedule bad cron", "Schedule", "s", `{"schedule":"every hour","template":{"repository":"r"}}`, `spec.schedule: Invalid value`},
			{"schedule four fields", "Schedule", "s", `{"schedule":"* * * *","template":{"repository":"r"}}`, `spec.schedule: Invalid value`},
			{"schedule keepLast 0", "Schedule", "s", `{"schedule":"@daily","keepLast":0,"template":{"repository":"r"}}`, `spec.keepLast: Invalid value`},
			{"schedule without template", "Schedule", "s", `{"schedule":"@daily"}`, `spec.template: Required value`},
			{"schedule name too long", "Schedule", long, `{"schedule":"@daily","template":{"repository":"r"}}`, `at most 48 characters`},
			{"repository bad url", "BackupRepository", "x", `{"url":"ftp://host/x","passwordSecretRef":{"name":"p"}}`, `spec.url: Invalid value`},
			{"repository no password", "BackupRepository", "x", `{"url":"/srv/repo"}`, `spec.passwordSecretRef: Required value`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var spec map[string]any
				if err := json.Unmarshal([]byte(tc.spec), &spec); err != nil {
					t.Fatal(err)
				}
				u := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": v1alpha1.GroupVersion.String(), "kind": tc.kind,
					"metadata": map[string]any{"name": tc.objName, "namespace": ns}, "spec": spec,
				}}
				err := e.c.Create(e.ctx(), u)
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("create: %v; want Invalid with %q", err, tc.want)
				}
			})
		}
	})

	t.Run("spec immutable", func(t *testing.T) {
		b := newBackup(ns, "fixed", v1alpha1.BackupSpec{})
		e.create(b)
		b.Spec.Tags = []string{"changed"}
		err := e.c.Update(e.ctx(), b)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec is immutable") {
			t.Errorf("update: %v", err)
		}
	})

	t.Run("one namespace, metrics and probes", func(t *testing.T) {
		// An operator of namespace "only" leaves the Backup "fixed" of
		// namespace "crds" alone, serves the metrics of the process
		// (controller-runtime's registry) and answers its probes.
		e.namespace("only")
		e.repository("only", "only-password")
		metricsAddr := fmt.Sprintf("127.0.0.1:%d", testsrv.FreePort(t, 0))
		healthAddr := fmt.Sprintf("127.0.0.1:%d", testsrv.FreePort(t, 0))
		e.start(Options{Runner: newFakeRunner(), Namespace: "only", MetricsAddr: metricsAddr, HealthAddr: healthAddr,
			Registry: ctrlmetrics.Registry})
		e.create(newBackup("only", "mine", v1alpha1.BackupSpec{}))
		e.backupPhase("only", "mine", v1alpha1.BackupCompleted)
		var other v1alpha1.Backup
		e.get(ns, "fixed", &other)
		if other.Status.Phase != "" {
			t.Errorf("the operator of namespace only touched crds/fixed: %+v", other.Status)
		}
		get := func(url string) string {
			resp, err := http.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s", url, resp.Status)
			}
			return string(b)
		}
		// (Values may include earlier runs of the test: -count=2 shares
		// the registry.)
		want := []string{`bunker_operator_backups_total{namespace="only",result="completed"} `,
			"bunker_operator_backup_duration_seconds_count ", `bunker_operator_running{kind="backup"} 0`,
			`bunker_operator_last_success_timestamp_seconds{namespace="only",schedule=""}`, "controller_runtime_reconcile_total"}
		eventually(t, "the completed backup in /metrics", func() bool {
			body := get("http://" + metricsAddr + "/metrics")
			return !slices.ContainsFunc(want, func(m string) bool { return !strings.Contains(body, m) })
		})
		get("http://" + healthAddr + "/healthz")
		get("http://" + healthAddr + "/readyz")
	})

	t.Run("crds served", func(t *testing.T) {
		crds, err := CRDs()
		if err != nil {
			t.Fatal(err)
		}
		for _, crd := range crds {
			var got apiextensionsv1.CustomResourceDefinition
			e.get("", crd.Name, &got)
			v := got.Spec.Versions[0]
			if got.Spec.Scope != apiextensionsv1.NamespaceScoped || v.Subresources == nil || v.Subresources.Status == nil {
				t.Errorf("%s: scope %s, subresources %+v", crd.Name, got.Spec.Scope, v.Subresources)
			}
		}
	})
}
