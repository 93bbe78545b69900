// Package kubebench measures Kubernetes backups against a real API server:
// 5,000 objects in 50 namespaces, backed up by `bunker backup kubernetes`
// and, for comparison, the usual glue (every object dumped to a JSON file,
// then `restic backup` and `borg create` of that directory), in the same
// run. Run it with bench/kube/run.sh; plain `go test ./...` skips it.
package kubebench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/kube"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

const password = "bench password"

func TestKubeBench(t *testing.T) {
	if os.Getenv("BUNKER_BENCH") != "1" {
		t.Skip("a benchmark: run bench/kube/run.sh")
	}
	namespaces := envInt("KUBE_NAMESPACES", 50)
	perNS := envInt("KUBE_OBJECTS_PER_NS", 100)
	rounds := envInt("ROUNDS", 3)

	k := testsrv.Kube(t)
	dyn, err := dynamic.NewForConfig(k.Config())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n := populate(t, dyn, namespaces, perNS)
	t.Logf("created %d objects in %d namespaces in %v", n, namespaces, time.Since(start).Round(time.Millisecond))

	work := t.TempDir()
	bin := filepath.Join(work, "bunker")
	run(t, nil, "go", "build", "-o", bin, "github.com/bunkerbackup/bunker/cmd/bunker")
	env := append(os.Environ(), "BUNKER_PASSWORD="+password, "KUBECONFIG="+k.Kubeconfig,
		"RESTIC_PASSWORD="+password, "BORG_PASSPHRASE="+password, "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes",
		"BORG_BASE_DIR="+filepath.Join(work, "borg-home"))

	var rows []row
	for i := 0; i < rounds; i++ {
		repo := filepath.Join(work, fmt.Sprintf("repo-%d", i))
		run(t, env, bin, "-r", repo, "init")
		first := timed(t, env, bin, "-r", repo, "--json", "backup", "kubernetes")
		size := dirSize(t, repo)
		second := timed(t, env, bin, "-r", repo, "--json", "backup", "kubernetes")
		rows = append(rows, row{"bunker", first.d, second.d, dirSize(t, repo) - size, first.objects(t)})
		_ = os.RemoveAll(repo)

		// The glue: dump every object to a file, then back the
		// directory up.
		dump := filepath.Join(work, fmt.Sprintf("dump-%d", i))
		dumpTime := dumpObjects(t, k, dump)
		if restic := testsrv.LookTool("restic", ""); restic != "" {
			rrepo := filepath.Join(work, fmt.Sprintf("restic-%d", i))
			run(t, env, restic, "-r", rrepo, "init")
			f := timed(t, env, restic, "-r", rrepo, "backup", "--json", dump)
			size := dirSize(t, rrepo)
			dumpObjects(t, k, dump) // the second run dumps again
			s := timed(t, env, restic, "-r", rrepo, "backup", "--json", dump)
			rows = append(rows, row{"dump + restic", dumpTime + f.d, dumpTime + s.d, dirSize(t, rrepo) - size, 0})
			_ = os.RemoveAll(rrepo)
		}
		if borg, err := exec.LookPath("borg"); err == nil {
			brepo := filepath.Join(work, fmt.Sprintf("borg-%d", i))
			run(t, env, borg, "init", "-e", "repokey-blake2", brepo)
			f := timed(t, env, borg, "create", brepo+"::a", dump)
			size := dirSize(t, brepo)
			dumpObjects(t, k, dump)
			s := timed(t, env, borg, "create", brepo+"::b", dump)
			rows = append(rows, row{"dump + borg", dumpTime + f.d, dumpTime + s.d, dirSize(t, brepo) - size, 0})
			_ = os.RemoveAll(brepo)
		}
		_ = os.RemoveAll(dump)
	}
	report(t, n, namespaces, rounds, rows)
}

type row struct {
	tool          string
	first, second time.Duration
	added         int64 // by the second backup
	objects       int
}

func report(t *testing.T, n, namespaces, rounds int, rows []row) {
	byTool := map[string][]row{}
	var tools []string
	for _, r := range rows {
		if _, ok := byTool[r.tool]; !ok {
			tools = append(tools, r.tool)
		}
		byTool[r.tool] = append(byTool[r.tool], r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Kubernetes backup: %d objects in %d namespaces, kube-apiserver v1.37.2 on loopback, %d rounds (medians)\n\n", n, namespaces, rounds)
	fmt.Fprintf(&b, "| tool | first backup | second backup (no change) | repository growth by the second |\n|---|---|---|---|\n")
	base := medianDur(byTool["bunker"], func(r row) time.Duration { return r.first })
	for _, tool := range tools {
		rs := byTool[tool]
		first := medianDur(rs, func(r row) time.Duration { return r.first })
		second := medianDur(rs, func(r row) time.Duration { return r.second })
		var added []int64
		for _, r := range rs {
			added = append(added, r.added)
		}
		sort.Slice(added, func(i, j int) bool { return added[i] < added[j] })
		fmt.Fprintf(&b, "| %s | %.2f s (%.2fx) | %.2f s | %d bytes |\n", tool, first.Seconds(), first.Seconds()/base.Seconds(), second.Seconds(), added[len(added)/2])
	}
	fmt.Print(b.String())
	if out := os.Getenv("BENCH_REPORT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func medianDur(rs []row, f func(row) time.Duration) time.Duration {
	var ds []time.Duration
	for _, r := range rs {
		ds = append(ds, f(r))
	}
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// populate creates perNS objects in each of n namespaces: config maps
// (40%), secrets (20%), services (15%), deployments (15%) and service
// accounts (10%).
func populate(t *testing.T, dyn dynamic.Interface, n, perNS int) int {
	ctx := context.Background()
	gv := func(g, v, r string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: g, Version: v, Resource: r}
	}
	type spec struct {
		gvr   schema.GroupVersionResource
		share int
		make  func(ns, name string, i int) map[string]any
	}
	payload := strings.Repeat("x", 800)
	specs := []spec{
		{gv("", "v1", "configmaps"), 40, func(ns, name string, i int) map[string]any {
			return map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"app": fmt.Sprint("app", i%7)}},
				"data": map[string]any{"config": fmt.Sprintf("%s-%d-%s", ns, i, payload)}}
		}},
		{gv("", "v1", "secrets"), 20, func(ns, name string, i int) map[string]any {
			return map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": name, "namespace": ns},
				"stringData": map[string]any{"password": fmt.Sprintf("pw-%s-%d", ns, i)}}
		}},
		{gv("", "v1", "services"), 15, func(ns, name string, i int) map[string]any {
			return map[string]any{"apiVersion": "v1", "kind": "Service", "metadata": map[string]any{"name": name, "namespace": ns},
				"spec": map[string]any{"selector": map[string]any{"app": name}, "ports": []any{map[string]any{"port": int64(80), "targetPort": int64(8080)}}}}
		}},
		{gv("apps", "v1", "deployments"), 15, func(ns, name string, i int) map[string]any {
			return map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": name, "namespace": ns},
				"spec": map[string]any{"replicas": int64(2), "selector": map[string]any{"matchLabels": map[string]any{"app": name}},
					"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"app": name}},
						"spec": map[string]any{"containers": []any{map[string]any{"name": "app", "image": "registry.example/" + name + ":1"}}}}}}
		}},
		{gv("", "v1", "serviceaccounts"), 10, func(ns, name string, i int) map[string]any {
			return map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": name, "namespace": ns}}
		}},
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	count := 0
	var mu sync.Mutex
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("team-%02d", i)
		_, err := dyn.Resource(gv("", "v1", "namespaces")).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		j := 0
		for _, s := range specs {
			for c := 0; c < perNS*s.share/100; c++ {
				obj := s.make(ns, fmt.Sprintf("%s-%03d", strings.TrimSuffix(s.gvr.Resource, "s"), c), j)
				j++
				g.Go(func() error {
					_, err := dyn.Resource(s.gvr).Namespace(ns).Create(gctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
					mu.Lock()
					count++
					mu.Unlock()
					return err
				})
			}
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return count + n
}

// dumpObjects writes every object to a file under dir, as a script
// around kubectl would, and returns how long it took.
func dumpObjects(t *testing.T, k *testsrv.KubeServer, dir string) time.Duration {
	_ = os.RemoveAll(dir)
	start := time.Now()
	cfg := k.Config()
	cfg.WarningHandler = rest.NoWarnings{}
	c, err := kube.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kube.Backup(context.Background(), c, dirSink(dir), kube.BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// dirSink writes a backup's files into a directory.
type dirSink string

func (d dirSink) WriteFile(_ context.Context, p string, rd io.Reader, m *source.Meta) (int64, error) {
	full := filepath.Join(string(d), filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
		return 0, err
	}
	f, err := os.Create(full)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, rd)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && m != nil && !m.ModTime.IsZero() {
		err = os.Chtimes(full, m.ModTime, m.ModTime)
	}
	return n, err
}

func (d dirSink) Mkdir(p string, m *source.Meta) error {
	return os.MkdirAll(filepath.Join(string(d), filepath.FromSlash(p)), 0o700)
}

func (d dirSink) Symlink(p, target string, m *source.Meta) error {
	return os.Symlink(target, filepath.Join(string(d), filepath.FromSlash(p)))
}

type timing struct {
	d   time.Duration
	out []byte
}

func (tm timing) objects(t *testing.T) int {
	var md struct {
		Metadata map[string]string `json:"metadata"`
	}
	_ = json.Unmarshal(lastJSON(tm.out, "summary"), &md)
	var n int
	fmt.Sscan(md.Metadata["kubernetes_objects"], &n)
	return n
}

func timed(t *testing.T, env []string, name string, args ...string) timing {
	t.Helper()
	start := time.Now()
	out := run(t, env, name, args...)
	return timing{time.Since(start), out}
}

func run(t *testing.T, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

// lastJSON returns the last JSON line whose message_type is typ.
func lastJSON(out []byte, typ string) []byte {
	lines := bytes.Split(out, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		var m map[string]any
		if json.Unmarshal(lines[i], &m) == nil && m["message_type"] == typ {
			return lines[i]
		}
	}
	return nil
}

// dirSize is the size of the files under dir.
func dirSize(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err == nil && n > 0 {
			return n
		}
	}
	return def
}
