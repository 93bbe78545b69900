package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// The Helm chart (deploy/helm/bunker). Helm is imported by this test
// only: the chart is rendered here, never by the bunker binary.
const chartDir = "../../deploy/helm/bunker"

// allOptions are chart values that turn on every option the chart has.
const allOptions = `
image: {repository: registry.example/bunker, tag: "1.2.3", pullPolicy: IfNotPresent}
imagePullSecrets: [{name: regcred}]
namespace: {name: "", create: true}
adminNamespaces: [backup-ops, platform]
watchNamespace: apps
tenant:
  schemes: [s3, rest]
  hosts: [minio.storage.svc, "*.s3.eu-west-1.amazonaws.com", 10.0.0.0/8]
  ambientCredentials: true
  role: true
operator:
  replicas: 2
  leaderElect: true
  concurrency: 4
  checkInterval: 5m
  mode: job
  job: {image: "registry.example/bunker-job:1.2.3", serviceAccount: bunker-jobs, createServiceAccount: true}
  nodeVolumes: true
  metricsPort: 9090
  healthPort: 9091
  metricsService: true
  extraArgs: [--install-crds]
  extraEnv: [{name: GOMEMLIMIT, value: 1800MiB}]
  resources: {requests: {cpu: 200m, memory: 512Mi}, limits: {memory: 4Gi}}
  podAnnotations: {prometheus.io/scrape: "true"}
  nodeSelector: {kubernetes.io/os: linux}
  tolerations: [{key: dedicated, operator: Equal, value: infra, effect: NoSchedule}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/arch, operator: In, values: [amd64, arm64]}]}]
agent:
  enabled: true
  kubeletDir: /var/lib/k0s/kubelet
  interval: 30s
  extraArgs: [--node=$(NODE_NAME)]
  extraEnv: [{name: GOMAXPROCS, value: "2"}]
  resources: {requests: {cpu: 10m, memory: 64Mi}, limits: {memory: 512Mi}}
  podAnnotations: {example.com/agent: "yes"}
  nodeSelector: {kubernetes.io/os: linux}
  tolerations: [{operator: Exists}]
restoreBinding: {enabled: true}
`

// rendered is a rendering of the chart: its CRDs and its templates'
// objects.
type rendered struct {
	crds, objs []*unstructured.Unstructured
}

// find returns the rendered object of that kind and name, or nil.
func (r *rendered) find(kind, name string) *unstructured.Unstructured {
	for _, u := range r.objs {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	return nil
}

// renderChart renders the chart as `helm install bunker chartDir
// --namespace releaseNS -f values` would, without a cluster.
func renderChart(t *testing.T, values string, releaseNS string) (*rendered, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load %s: %v", chartDir, err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
		t.Fatalf("values: %v", err)
	}
	top, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: "bunker", Namespace: releaseNS, IsInstall: true, Revision: 1}, nil)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, top)
	if err != nil {
		return nil, err
	}
	r := &rendered{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		r.objs = append(r.objs, yamlObjects(t, name, []byte(files[name]))...)
	}
	for _, crd := range ch.CRDObjects() {
		r.crds = append(r.crds, yamlObjects(t, crd.Filename, crd.File.Data)...)
	}
	return r, nil
}

// yamlObjects decodes the objects of a multi-document YAML file the way
// manifests does, skipping documents that are empty or only comments (a
// template whose condition is false).
func yamlObjects(t *testing.T, name string, b []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for i, doc := range bytes.Split(append([]byte("\n"), b...), []byte("\n---")) {
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Errorf("%s document %d: %v\n%s", name, i, err, doc)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(j, &m); err != nil {
			t.Errorf("%s document %d: not an object: %s", name, i, j)
			continue
		}
		if m == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			t.Errorf("%s document %d: no apiVersion, kind or name", name, i)
			continue
		}
		objs = append(objs, u)
	}
	return objs
}

func objectKey(u *unstructured.Unstructured) string {
	return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
}

// withoutChartLabels returns a copy of u without the labels the chart adds
// to those of the manifests (Helm's own), after checking that it has
// them, and without the annotation that keeps its namespace. The objects
// of the manifests and the chart are compared so.
func withoutChartLabels(t *testing.T, u *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	c := u.DeepCopy()
	for _, path := range [][]string{{"metadata", "labels"}, {"spec", "template", "metadata", "labels"}} {
		labels, ok, _ := unstructured.NestedStringMap(c.Object, path...)
		if !ok {
			continue
		}
		for k, v := range map[string]string{"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "bunker", "helm.sh/chart": "bunker-0.1.0"} {
			if labels[k] != v {
				t.Errorf("%s: %s label %s is %q, want %q", objectKey(u), strings.Join(path, "."), k, labels[k], v)
			}
			delete(labels, k)
		}
		if err := unstructured.SetNestedStringMap(c.Object, labels, path...); err != nil {
			t.Fatal(err)
		}
	}
	// The chart's namespace outlives the release (checked apart).
	if ann := c.GetAnnotations(); ann != nil {
		delete(ann, "helm.sh/resource-policy")
		if len(ann) == 0 {
			ann = nil
		}
		c.SetAnnotations(ann)
	}
	return c
}

// containerArgs returns the args of the only container of the Deployment
// or DaemonSet u.
func containerArgs(t *testing.T, u *unstructured.Unstructured) []string {
	t.Helper()
	if u == nil {
		t.Fatal("no such object")
	}
	cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("%s: %d containers", objectKey(u), len(cs))
	}
	args, _, _ := unstructured.NestedStringSlice(cs[0].(map[string]any), "args")
	return args
}

// TestHelmChart renders the chart with its defaults and with every
// option on, checks the defaults install what deploy/kubernetes installs,
// and applies both renderings to a real API server.
func TestHelmChart(t *testing.T) {
	kust, _ := manifests(t)
	want := map[string]*unstructured.Unstructured{}
	for file, objs := range kust {
		if file == "restore-binding.yaml" || strings.HasPrefix(file, "crds/") {
			continue
		}
		for _, u := range objs {
			want[objectKey(u)] = u
		}
	}
	restoreBinding := kust["restore-binding.yaml"]
	if len(restoreBinding) != 1 {
		t.Fatalf("restore-binding.yaml holds %d objects", len(restoreBinding))
	}

	defaults, err := renderChart(t, "", "default")
	if err != nil {
		t.Fatalf("render the defaults: %v", err)
	}
	all, err := renderChart(t, allOptions, "backup-ops")
	if err != nil {
		t.Fatalf("render every option: %v", err)
	}

	t.Run("defaults are the manifests", func(t *testing.T) {
		// The same objects, identical but for Helm's labels.
		got := map[string]*unstructured.Unstructured{}
		for _, u := range defaults.objs {
			if got[objectKey(u)] != nil {
				t.Errorf("%s rendered twice", objectKey(u))
			}
			got[objectKey(u)] = u
		}
		for _, k := range slices.Sorted(maps.Keys(want)) {
			g := got[k]
			if g == nil {
				t.Errorf("the chart does not render %s", k)
				continue
			}
			compareObjects(t, want[k], withoutChartLabels(t, g))
		}
		for _, k := range slices.Sorted(maps.Keys(got)) {
			if want[k] == nil {
				t.Errorf("the chart renders %s, which deploy/kubernetes does not install", k)
			}
		}
		if defaults.find("ClusterRoleBinding", "bunker-restore") != nil {
			t.Error("the restore binding is rendered by default")
		}
		// The namespace outlives the release: it holds the users' objects.
		if ns := defaults.find("Namespace", "bunker-system"); ns == nil || ns.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("namespace bunker-system is not kept by helm uninstall: %v", ns)
		}
	})

	t.Run("restore binding", func(t *testing.T) {
		r, err := renderChart(t, "restoreBinding: {enabled: true}", "default")
		if err != nil {
			t.Fatal(err)
		}
		g := r.find("ClusterRoleBinding", "bunker-restore")
		if g == nil {
			t.Fatal("restoreBinding.enabled renders no ClusterRoleBinding bunker-restore")
		}
		compareObjects(t, restoreBinding[0], withoutChartLabels(t, g))
	})

	t.Run("crds", func(t *testing.T) {
		// Helm installs crds/ before the templates: the embedded CRDs,
		// which TestDeployCRDs keeps byte-equal to the chart's files.
		if len(defaults.crds) != len(CRDFiles()) {
			t.Errorf("the chart has %d CRDs, want %d", len(defaults.crds), len(CRDFiles()))
		}
		for _, u := range defaults.crds {
			if u.GetKind() != "CustomResourceDefinition" || !strings.HasSuffix(u.GetName(), ".bunker.dev") {
				t.Errorf("crds/ holds %s", objectKey(u))
			}
		}
	})

	t.Run("every option", func(t *testing.T) {
		const ns = "backup-ops"
		for _, u := range all.objs {
			if u.GetNamespace() != "" && u.GetNamespace() != ns {
				t.Errorf("%s is not in the release's namespace %s", objectKey(u), ns)
			}
		}
		tenantArgs := []string{"--admin-namespace=backup-ops,platform", "--namespace=apps", "--tenant-schemes=s3,rest",
			"--tenant-hosts=minio.storage.svc,*.s3.eu-west-1.amazonaws.com,10.0.0.0/8", "--tenant-ambient-credentials"}
		wantOp := append(append([]string{"operator", "--metrics-addr=:9090", "--health-addr=:9091", "--leader-elect"}, tenantArgs...),
			"--concurrency=4", "--check-interval=5m", "--mode=job", "--image=registry.example/bunker-job:1.2.3",
			"--job-service-account=bunker-jobs", "--install-crds")
		if got := containerArgs(t, all.find("Deployment", "bunker-operator")); !slices.Equal(got, wantOp) {
			t.Errorf("operator args\n%q, want\n%q", got, wantOp)
		}
		wantAgent := append(append([]string{"agent"}, tenantArgs...), "--kubelet-dir=/var/lib/k0s/kubelet", "--interval=30s", "--node=$(NODE_NAME)")
		if got := containerArgs(t, all.find("DaemonSet", "bunker-agent")); !slices.Equal(got, wantAgent) {
			t.Errorf("agent args\n%q, want\n%q", got, wantAgent)
		}
		b, _ := json.Marshal(all.objs)
		for _, s := range []string{`"image":"registry.example/bunker:1.2.3"`, `"imagePullPolicy":"IfNotPresent"`, `"imagePullSecrets":[{"name":"regcred"}]`,
			`"replicas":2`, `"containerPort":9090`, `"port":9090`, `{"name":"GOMEMLIMIT","value":"1800MiB"}`, `{"name":"GOMAXPROCS","value":"2"}`,
			`"prometheus.io/scrape":"true"`, `"example.com/agent":"yes"`, `"key":"dedicated"`, `"nodeAffinity"`, `"kubernetes.io/os":"linux"`,
			`"mountPath":"/var/lib/k0s/kubelet"`, `"path":"/var/lib/k0s/kubelet"`, `"memory":"4Gi"`, `"memory":"512Mi"`} {
			if !bytes.Contains(b, []byte(s)) {
				t.Errorf("no %s in the rendering", s)
			}
		}
		// Job mode: the Jobs' service account, bound to bunker-backup,
		// and the restore binding goes to it instead of the operator.
		if all.find("ServiceAccount", "bunker-jobs") == nil || all.find("ClusterRoleBinding", "bunker-job-backups") == nil {
			t.Error("job mode renders no service account bunker-jobs bound to bunker-backup")
		}
		if rb := all.find("ClusterRoleBinding", "bunker-restore"); rb == nil {
			t.Error("no restore binding")
		} else if subj, _, _ := unstructured.NestedSlice(rb.Object, "subjects"); len(subj) != 1 ||
			subj[0].(map[string]any)["name"] != "bunker-jobs" || subj[0].(map[string]any)["namespace"] != ns {
			t.Errorf("restore binding subjects %v, want the service account bunker-jobs of %s", subj, ns)
		}
	})

	t.Run("no agent", func(t *testing.T) {
		r, err := renderChart(t, "agent: {enabled: false}", "default")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"DaemonSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} {
			if r.find(k, "bunker-agent") != nil {
				t.Errorf("%s bunker-agent rendered without the agent", k)
			}
		}
		if b, _ := json.Marshal(r.objs); bytes.Contains(b, []byte("bunker-agent")) {
			t.Error("the agent is named in the rendering without it")
		}
		// Without agents the operator backs up the volume files itself.
		wantOp := []string{"operator", "--metrics-addr=:8080", "--health-addr=:8081", "--leader-elect"}
		if got := containerArgs(t, r.find("Deployment", "bunker-operator")); !slices.Equal(got, wantOp) {
			t.Errorf("operator args %q, want %q", got, wantOp)
		}
	})

	t.Run("bad values", func(t *testing.T) {
		for _, tc := range []struct{ values, want string }{
			{"operator: {mode: sometimes}", `operator.mode is "sometimes"`},
			{"operator: {nodeVolumes: maybe}", `operator.nodeVolumes is "maybe"`},
		} {
			if _, err := renderChart(t, tc.values, "default"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want an error with %q", tc.values, err, tc.want)
			}
		}
	})

	t.Run("lint", func(t *testing.T) {
		for name, values := range map[string]string{"defaults": "", "every option": allOptions} {
			var vals map[string]any
			if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
				t.Fatal(err)
			}
			for _, m := range lint.RunAll(chartDir, vals, "backup-ops").Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint (%s): %v", name, m)
				}
			}
		}
	})

	t.Run("apply", func(t *testing.T) {
		k := testsrv.Kube(t)
		scheme := Scheme()
		if err := apiextensionsv1.AddToScheme(scheme); err != nil {
			t.Fatal(err)
		}
		c, err := client.New(k.Config(), client.Options{Scheme: scheme})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		apply := func(what string, objs []*unstructured.Unstructured) {
			t.Helper()
			// Namespaces first, as Helm does.
			objs = slices.Clone(objs)
			slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
				return boolRank(b.GetKind() == "Namespace") - boolRank(a.GetKind() == "Namespace")
			})
			for _, u := range objs {
				if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u.DeepCopy()), client.FieldOwner("helm-test"), client.ForceOwnership); err != nil {
					t.Errorf("%s: apply %s: %v", what, objectKey(u), err)
				}
			}
		}
		apply("crds", defaults.crds)
		for _, u := range defaults.crds {
			eventually(t, "CRD "+u.GetName()+" established", func() bool {
				var crd apiextensionsv1.CustomResourceDefinition
				if err := c.Get(ctx, client.ObjectKey{Name: u.GetName()}, &crd); err != nil {
					return false
				}
				return slices.ContainsFunc(crd.Status.Conditions, func(c apiextensionsv1.CustomResourceDefinitionCondition) bool {
					return c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue
				})
			})
		}
		apply("defaults", defaults.objs)
		apply("every option", all.objs)
		// What the API server holds is what was rendered.
		var d appsv1.Deployment
		if err := c.Get(ctx, client.ObjectKey{Namespace: "backup-ops", Name: "bunker-operator"}, &d); err != nil {
			t.Fatal(err)
		}
		if got, want := d.Spec.Template.Spec.Containers[0].Args, containerArgs(t, all.find("Deployment", "bunker-operator")); !slices.Equal(got, want) {
			t.Errorf("applied operator args %q, want %q", got, want)
		}
		var ds appsv1.DaemonSet
		if err := c.Get(ctx, client.ObjectKey{Namespace: "bunker-system", Name: "bunker-agent"}, &ds); err != nil {
			t.Fatal(err)
		}
		if got, want := ds.Spec.Template.Spec.Containers[0].Args, []string{"agent"}; !slices.Equal(got, want) {
			t.Errorf("applied agent args %q, want %q", got, want)
		}
	})
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compareObjects reports where got differs from want.
func compareObjects(t *testing.T, want, got *unstructured.Unstructured) {
	t.Helper()
	w, _ := json.Marshal(want.Object)
	g, _ := json.Marshal(got.Object)
	if !bytes.Equal(w, g) {
		t.Errorf("%s differs from deploy/kubernetes:\n chart: %s\n  want: %s", objectKey(want), g, w)
	}
}
