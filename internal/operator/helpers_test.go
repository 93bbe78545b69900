package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// env is an API server with the CRDs installed and a direct client.
type env struct {
	t   *testing.T
	k   *testsrv.KubeServer
	c   client.Client
	log *syncBuffer // everything every operator of the test logged
}

func newEnv(t *testing.T) *env {
	t.Helper()
	k := testsrv.Kube(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := InstallCRDs(ctx, k.Config(), time.Minute); err != nil {
		t.Fatal(err)
	}
	scheme := Scheme()
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(k.Config(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, k: k, c: c, log: &syncBuffer{}}
}

// running is an operator started by env.start.
type running struct {
	op   *Operator
	stop func() // cancels and waits for Start to return
}

// start starts an operator with opts (a fresh metrics registry and the
// test's log buffer unless set) and stops it when the test ends.
func (e *env) start(opts Options) *running {
	e.t.Helper()
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.AdminNamespaces == nil {
		// The tests that predate the tenancy rule test an admin's
		// objects; tenancy_test.go names its admin namespace.
		opts.AdminNamespaces = []string{"*"}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	op, err := New(e.k.Config(), opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- op.Start(ctx) }()
	var once sync.Once
	r := &running{op: op}
	r.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("operator: %v", err)
			}
		})
	}
	e.t.Cleanup(r.stop)
	return r
}

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

func (e *env) create(obj client.Object) {
	e.t.Helper()
	if err := e.c.Create(e.ctx(), obj); err != nil {
		e.t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

func (e *env) get(ns, name string, obj client.Object) {
	e.t.Helper()
	if err := e.c.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: name}, obj); err != nil {
		e.t.Fatalf("get %T %s/%s: %v", obj, ns, name, err)
	}
}

// namespace creates namespace ns.
func (e *env) namespace(ns string) {
	e.t.Helper()
	e.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
}

// repository creates a password Secret and a BackupRepository named
// "repo" in ns.
func (e *env) repository(ns, password string) {
	e.t.Helper()
	e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "repo-password", Namespace: ns},
		StringData: map[string]string{"password": password}})
	e.create(&v1alpha1.BackupRepository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns},
		Spec: v1alpha1.BackupRepositorySpec{URL: "s3:https://s3.example.net/bucket/" + ns,
			PasswordSecretRef: v1alpha1.SecretKeyRef{Name: "repo-password"}}})
}

// poke changes an annotation of obj, which makes its controller look at
// it again.
func (e *env) poke(obj client.Object) {
	e.t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"test.bunker.dev/poke":%q}}}`, time.Now().Format(time.RFC3339Nano))
	if err := e.c.Patch(e.ctx(), obj, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		e.t.Fatalf("poke %s: %v", obj.GetName(), err)
	}
}

// eventually polls cond until it holds; it fails the test after a
// minute (a bound for a hung operator, not a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	defer func() {
		if d := time.Since(start); d > 300*time.Millisecond {
			t.Logf("waited %v for %s", d, what)
		}
	}()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// backupPhase waits until Backup ns/name is in phase and returns it.
func (e *env) backupPhase(ns, name string, phase v1alpha1.BackupPhase) *v1alpha1.Backup {
	e.t.Helper()
	var b v1alpha1.Backup
	eventually(e.t, fmt.Sprintf("Backup %s/%s %s", ns, name, phase), func() bool {
		e.get(ns, name, &b)
		return b.Status.Phase == phase
	})
	return &b
}

func (e *env) restorePhase(ns, name string, phase v1alpha1.RestorePhase) *v1alpha1.Restore {
	e.t.Helper()
	var r v1alpha1.Restore
	eventually(e.t, fmt.Sprintf("Restore %s/%s %s", ns, name, phase), func() bool {
		e.get(ns, name, &r)
		return r.Status.Phase == phase
	})
	return &r
}

// events returns the notes of the events about objects in ns, as
// "Reason: note".
func (e *env) events(ns string) []string {
	e.t.Helper()
	var list eventsv1.EventList
	if err := e.c.List(e.ctx(), &list, client.InNamespace(ns)); err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range list.Items {
		out = append(out, ev.Reason+": "+ev.Note)
	}
	return out
}

// waitEvent waits for an event whose "Reason: note" contains s.
func (e *env) waitEvent(ns, s string) {
	e.t.Helper()
	eventually(e.t, fmt.Sprintf("an event %q in %s", s, ns), func() bool {
		for _, ev := range e.events(ns) {
			if strings.Contains(ev, s) {
				return true
			}
		}
		return false
	})
}

func condition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// fakeRunner records calls. Its Backup and Restore run the hooks when
// set; FindBackup answers from the snapshots it saved (or found).
type fakeRunner struct {
	mu        sync.Mutex
	checks    []Repo
	backups   []BackupRequest
	restores  []RestoreRequest
	finds     []string
	snapshots map[string]BackupResult // by tag
	next      int

	checkFn   func(Repo) error
	backupFn  func(ctx context.Context, req BackupRequest) (BackupResult, error)
	restoreFn func(ctx context.Context, req RestoreRequest) (RestoreResult, error)
	findErr   error
}

func newFakeRunner() *fakeRunner { return &fakeRunner{snapshots: map[string]BackupResult{}} }

func (f *fakeRunner) Check(_ context.Context, repo Repo) error {
	f.mu.Lock()
	f.checks = append(f.checks, repo)
	fn := f.checkFn
	f.mu.Unlock()
	if fn != nil {
		return fn(repo)
	}
	return nil
}

func (f *fakeRunner) Backup(ctx context.Context, req BackupRequest) (BackupResult, error) {
	f.mu.Lock()
	f.backups = append(f.backups, req)
	f.next++
	res := BackupResult{SnapshotID: fmt.Sprintf("%064x", f.next), Objects: 10 * f.next, BytesAdded: 1000 * int64(f.next)}
	fn := f.backupFn
	f.mu.Unlock()
	if fn != nil {
		r, err := fn(ctx, req)
		if err != nil {
			return BackupResult{}, err
		}
		if r.SnapshotID != "" {
			res = r
		}
	}
	f.mu.Lock()
	for _, t := range req.Tags {
		f.snapshots[t] = res
	}
	f.mu.Unlock()
	return res, nil
}

func (f *fakeRunner) FindBackup(_ context.Context, _ Repo, tag string) (BackupResult, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finds = append(f.finds, tag)
	if f.findErr != nil {
		return BackupResult{}, false, f.findErr
	}
	r, ok := f.snapshots[tag]
	return r, ok, nil
}

func (f *fakeRunner) Restore(ctx context.Context, req RestoreRequest) (RestoreResult, error) {
	f.mu.Lock()
	f.restores = append(f.restores, req)
	fn := f.restoreFn
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, req)
	}
	return RestoreResult{Restored: 7, Skipped: 2}, nil
}

func (f *fakeRunner) backupCalls() []BackupRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]BackupRequest(nil), f.backups...)
}

func (f *fakeRunner) restoreCalls() []RestoreRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]RestoreRequest(nil), f.restores...)
}

func (f *fakeRunner) checkCalls() []Repo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Repo(nil), f.checks...)
}

var errBoom = errors.New("boom")

// fakeClock is a clock the test sets.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// equalJSON compares a and b as the API server would see them.
func equalJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// value reads a counter's or gauge's value, or a histogram's count.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Histogram != nil:
		return float64(d.Histogram.GetSampleCount())
	}
	return -1
}

func rawMerge(p []byte) client.Patch { return client.RawPatch(types.MergePatchType, p) }
