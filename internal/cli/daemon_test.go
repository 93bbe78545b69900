package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/daemon"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

// daemonEnv runs bunker daemon in-process on a fake clock.
type daemonEnv struct {
	t      *testing.T
	pe     *planEnv
	clock  *daemon.FakeClock
	addr   string
	d      *daemon.Daemon
	cancel context.CancelFunc
	done   chan int
	stderr *syncBuf
	reload func() error
	// token is what get sends as a Bearer token: the plan's read token
	// (READ_TOKEN in the tests' environments) or else its run token
	// (API_TOKEN), as a dashboard or a scraper would.
	token string
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startDaemon(t *testing.T, pe *planEnv, clock *daemon.FakeClock, extra ...string) *daemonEnv {
	t.Helper()
	de := &daemonEnv{t: t, pe: pe, clock: clock, done: make(chan int, 1), stderr: &syncBuf{}, token: pe.env["READ_TOKEN"]}
	if de.token == "" {
		de.token = pe.env["API_TOKEN"]
	}
	started := make(chan struct{})
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: de.stderr, Getenv: func(k string) string { return pe.env[k] },
		Daemon: &cli.DaemonHooks{Clock: clock, Started: func(d *daemon.Daemon, addr string) {
			de.d, de.addr = d, addr
			close(started)
		}, Reload: func(r func() error) { de.reload = r }}}
	ctx, cancel := context.WithCancel(context.Background())
	de.cancel = cancel
	args := append([]string{"daemon", "--plan", pe.plan, "--listen", "127.0.0.1:0", "--state-dir", filepath.Join(pe.dir, "state"),
		"--measure-every", "10m", "--shutdown-grace", "100ms"}, extra...)
	go func() { de.done <- app.Run(ctx, args) }()
	select {
	case <-started:
	case code := <-de.done:
		t.Fatalf("daemon exited with %d:\n%s", code, de.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not start:\n%s", de.stderr.String())
	}
	t.Cleanup(func() { de.stop() })
	return de
}

func (de *daemonEnv) stop() int {
	if de.cancel == nil {
		return 0
	}
	de.cancel()
	de.cancel = nil
	select {
	case code := <-de.done:
		return code
	case <-time.After(30 * time.Second):
		de.t.Fatalf("daemon did not stop:\n%s", de.stderr.String())
	}
	return -1
}

// settle waits until the scheduler sleeps on the clock again.
func (de *daemonEnv) settle() {
	de.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !de.clock.WaitSleepers(ctx, 1) {
		de.t.Fatalf("the scheduler does not sleep:\n%s", de.stderr.String())
	}
}

// advance moves the fake clock and lets the scheduler act, once every
// job has finished (a slot that comes while its job runs is skipped).
func (de *daemonEnv) advance(d time.Duration) {
	de.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(de.d.Running()) > 0 {
		if time.Now().After(deadline) {
			de.t.Fatalf("still running: %v\n%s", de.d.Running(), de.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	de.settle()
	de.clock.Advance(d)
}

func (de *daemonEnv) get(path string, v any) {
	de.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+de.addr+path, nil)
	if err != nil {
		de.t.Fatal(err)
	}
	if de.token != "" {
		req.Header.Set("Authorization", "Bearer "+de.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		de.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		de.t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	if s, ok := v.(*string); ok {
		*s = string(b)
		return
	}
	if err := json.Unmarshal(b, v); err != nil {
		de.t.Fatalf("GET %s: %v\n%s", path, err, b)
	}
}

type apiRun struct {
	ID, Job, Kind, Trigger, Result, Error, Reason, Snapshot string
	RestoreSeconds                                          float64 `json:"restore_seconds"`
}

func (de *daemonEnv) runs(job string) []apiRun {
	var runs []apiRun
	de.get("/api/v1/runs?job="+job, &runs)
	return runs
}

// waitRuns waits until job has n finished runs.
func (de *daemonEnv) waitRuns(job string, n int) []apiRun {
	de.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		runs := de.runs(job)
		done := 0
		for _, r := range runs {
			if r.Result != "running" {
				done++
			}
		}
		if done >= n {
			return runs
		}
		if time.Now().After(deadline) {
			de.t.Fatalf("job %s: %d finished runs, want %d: %+v\n%s", job, done, n, runs, de.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hookReceiver is a webhook endpoint that records what it gets.
type hookReceiver struct {
	mu     sync.Mutex
	events []map[string]any
	srv    *httptest.Server
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		h.mu.Lock()
		h.events = append(h.events, m)
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) kinds() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.events {
		out = append(out, fmt.Sprint(e["kind"], ":", e["job"]))
	}
	return out
}

// TestDaemonSchedules: a files job with a copy and retention and a drill
// run on schedule under a fake clock; an unreachable repository turns
// into an RPO violation in status and /metrics and a webhook alert.
func TestDaemonSchedules(t *testing.T) {
	hooks := newHookReceiver(t)
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    copies: [{repository: copy, retention: {keep_last: 5}}]
    retention: {keep_last: 2}
    rpo: 3h
    rto: 1h
drills:
  - name: home-drill
    job: home
    schedule: every 2h
notify:
  webhooks: [{url: "${HOOK}"}]
`)
	pe.env["HOOK"] = hooks.srv.URL
	clock := daemon.NewFakeClock(time.Now().Truncate(time.Hour))
	de := startDaemon(t, pe, clock)

	// Hours pass: the job runs once per slot, the copy follows, retention
	// keeps two in main; the drill runs every other hour.
	for i := 1; i <= 3; i++ {
		de.advance(time.Hour)
		de.waitRuns("home", i)
	}
	runs := de.waitRuns("home", 3)
	for _, r := range runs {
		if r.Result != "success" || r.Trigger != "schedule" || r.Snapshot == "" {
			t.Errorf("run %+v", r)
		}
	}
	if n := pe.snapshotsTagged(pe.main, "job=home"); n != 2 {
		t.Errorf("main holds %d snapshots of home, want 2", n)
	}
	if n := pe.snapshotsTagged(pe.copy, "job=home"); n != 3 {
		t.Errorf("copy holds %d snapshots of home, want 3", n)
	}
	var drill apiRun
	for _, r := range de.waitRuns("home-drill", 1) {
		if r.Result != "running" {
			drill = r
			break
		}
	}
	if drill.Result != "success" || drill.RestoreSeconds <= 0 {
		t.Errorf("drill: %+v", drill)
	}
	var st daemon.APIStatus
	de.get("/api/v1/status", &st)
	if len(st.Jobs) != 1 || st.Jobs[0].LastSuccess == nil || len(st.Drills) != 1 || st.Drills[0].LastRun == nil {
		t.Fatalf("status: %+v", st)
	}

	// The main repository goes away: after the RPO, status and metrics
	// say violated and the webhook hears of it once.
	before := len(hooks.kinds())
	must(t, os.Rename(pe.main.repo, pe.main.repo+".gone"))
	for i := 0; i < 4; i++ {
		de.advance(time.Hour)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var metrics string
		de.get("/metrics", &metrics)
		if strings.Contains(metrics, `bunker_rpo_violated{job="home"} 1`) && strings.Contains(strings.Join(hooks.kinds(), " "), "rpo:home") {
			if !strings.Contains(metrics, `bunker_job_runs_total{job="home",result="failed"}`) || !strings.Contains(metrics, `bunker_rule_321_ok{dataset="home"}`) {
				t.Errorf("metrics lack runs or 3-2-1:\n%s", metrics)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no RPO violation seen; hooks %v; metrics:\n%s\nlog:\n%s", hooks.kinds(), metrics, de.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
		de.advance(10 * time.Minute)
	}
	de.get("/api/v1/status", &st)
	if st.Status == nil || st.Status.Jobs[0].RPOState != "violated" {
		t.Errorf("API status: %+v", st.Status)
	}
	n := 0
	for _, k := range hooks.kinds()[before:] {
		if k == "rpo:home" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("RPO alert sent %d times: %v", n, hooks.kinds())
	}
	// bunker status, with the daemon gone and the repository still
	// unreachable, judges from the run history: violated, exit 4.
	de.stop()
	res := pe.run("--json", "status", "--plan", pe.plan, "--state-dir", filepath.Join(pe.dir, "state"), "--at", clock.Now().UTC().Format(time.RFC3339))
	if res.Code != 4 || !strings.Contains(res.Stdout, `"rpo_state":"violated"`) || !strings.Contains(res.Stdout, `"reachable":false`) {
		t.Errorf("status after the outage:\n%s", res)
	}
}

// TestDaemonRestart: a daemon stopped in the middle of a run records it
// as cancelled, and after a restart that slot is not run again; a missed
// slot during the downtime is caught up once.
func TestDaemonRestart(t *testing.T) {
	pe := newPlanEnv(t, `  - name: slow
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    hooks:
      before: [{command: "touch ${DIR}/started; sleep 20"}]
`)
	clock := daemon.NewFakeClock(time.Now().Truncate(time.Hour).Add(30 * time.Minute))
	de := startDaemon(t, pe, clock)
	de.advance(time.Hour)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(pe.dir, "started")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not start:\n%s", de.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := de.stop(); code != 0 {
		t.Fatalf("daemon exit %d:\n%s", code, de.stderr.String())
	}

	// Restart at the same time: the slot was claimed, nothing runs again.
	must(t, os.WriteFile(filepath.Join(pe.dir, "plan.yaml"), []byte(strings.Replace(mustRead(t, pe.plan), "touch ${DIR}/started; sleep 20", "true", 1)), 0o600))
	de = startDaemon(t, pe, clock)
	runs := de.runs("slow")
	if len(runs) != 1 || runs[0].Result != "cancelled" || !strings.Contains(runs[0].Reason, "shut down") {
		t.Fatalf("after restart: %+v", runs)
	}
	de.settle()
	time.Sleep(200 * time.Millisecond)
	if runs := de.runs("slow"); len(runs) != 1 {
		t.Fatalf("the interrupted slot ran again: %+v", runs)
	}
	de.stop()

	// Three hours of downtime: one catch-up run, not three.
	clock.Advance(3 * time.Hour)
	de = startDaemon(t, pe, clock)
	runs = de.waitRuns("slow", 2)
	if runs[0].Trigger != "catch-up" || runs[0].Result != "success" {
		t.Fatalf("catch-up run: %+v", runs[0])
	}
	de.settle()
	time.Sleep(200 * time.Millisecond)
	if runs := de.runs("slow"); len(runs) != 2 {
		t.Fatalf("missed slots ran more than once: %+v", runs)
	}
}

// TestDaemonReloadAndAPI: an invalid plan on reload is refused and the
// old one kept; the API refuses runs without the token and starts one
// with it.
func TestDaemonReloadAndAPI(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
daemon:
  api_token: env:API_TOKEN
`)
	pe.env["API_TOKEN"] = "s3cret-token"
	clock := daemon.NewFakeClock(time.Now())
	de := startDaemon(t, pe, clock)
	post := func(token string) int {
		req, _ := http.NewRequest("POST", "http://"+de.addr+"/api/v1/jobs/home/run", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Logf("POST with %q: %s %s", token, resp.Status, b)
		}
		return resp.StatusCode
	}
	if code := post(""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	if code := post("wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	if code := post("s3cret-token"); code != http.StatusAccepted {
		t.Errorf("token: %d", code)
	}
	runs := de.waitRuns("home", 1)
	if runs[0].Trigger != "api" || runs[0].Result != "success" {
		t.Errorf("API run: %+v", runs[0])
	}
	must(t, os.WriteFile(pe.plan, []byte("jobs: [{name: x, schedul: every 1h}]\n"), 0o600))
	if err := de.reload(); err == nil {
		t.Fatal("an invalid plan was accepted")
	}
	if !strings.Contains(de.stderr.String(), "plan reload refused") || de.d.Plan().Job("home") == nil {
		t.Errorf("reload:\n%s", de.stderr.String())
	}
	if strings.Contains(de.stderr.String(), "s3cret-token") {
		t.Error("the API token leaked into the log")
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDaemonPostgresJob: a PostgreSQL job runs on schedule under the
// daemon, its dump is copied to the second repository and retention
// applies.
func TestDaemonPostgresJob(t *testing.T) {
	pg := testsrv.Postgres(t, testsrv.PGOptions{})
	pg.PSQL(t, "postgres", "CREATE DATABASE app")
	pg.PSQL(t, "app", "CREATE TABLE t AS SELECT generate_series(1, 1000) AS id")
	pe := newPlanEnv(t, `  - name: db
    source: {type: postgres, dsn: env:PGDSN, databases: [app]}
    schedule: every 1h
    repository: main
    copies: [{repository: copy}]
    retention: {keep_last: 1}
    rpo: 2h
drills:
  - name: db-drill
    job: db
    schedule: every 2h
    validate:
      checks: [{sql: "SELECT count(*) FROM t", database: app, expect: "1000"}]
  - name: db-drill-wrong
    job: db
    schedule: every 2h
    validate:
      checks: [{sql: "SELECT count(*) FROM t", database: app, expect: "999"}]
`)
	pe.env["PGDSN"] = pg.DSN("postgres")
	clock := daemon.NewFakeClock(time.Now().Truncate(time.Hour))
	de := startDaemon(t, pe, clock)
	de.advance(time.Hour)
	de.waitRuns("db", 1)
	de.advance(time.Hour)
	runs := de.waitRuns("db", 2)
	for _, r := range runs {
		if r.Result != "success" {
			t.Fatalf("run %+v\n%s", r, de.stderr.String())
		}
	}
	if n := pe.snapshotsTagged(pe.main, "job=db"); n != 1 {
		t.Errorf("main holds %d snapshots of db, want 1", n)
	}
	if n := pe.snapshotsTagged(pe.copy, "job=db"); n != 2 {
		t.Errorf("copy holds %d snapshots of db, want 2", n)
	}
	var full struct {
		Log string `json:"log"`
	}
	de.get("/api/v1/runs/"+runs[0].ID, &full)
	if !strings.Contains(full.Log, "backup postgres") || strings.Contains(full.Log, pg.Password) {
		t.Errorf("run log (password must not appear):\n%s", full.Log)
	}
	// The drills restored the dump into a scratch server and ran their
	// checks: one passes, the one expecting the wrong count fails.
	finished := func(job string) apiRun {
		for _, r := range de.waitRuns(job, 1) {
			if r.Result != "running" {
				return r
			}
		}
		return apiRun{}
	}
	if r := finished("db-drill"); r.Result != "success" || r.RestoreSeconds <= 0 {
		t.Errorf("drill: %+v\n%s", r, de.stderr.String())
	}
	if r := finished("db-drill-wrong"); r.Result != "failed" || !strings.Contains(r.Error, `returned "1000", want "999"`) {
		t.Errorf("wrong drill: %+v", r)
	}
	// bunker status reads the drill results from the state directory
	// once the daemon is gone, and the failed drill is a violation.
	de.stop()
	res := pe.run("--json", "status", "--plan", pe.plan, "--state-dir", filepath.Join(pe.dir, "state"))
	if res.Code != 4 || !strings.Contains(res.Stdout, `"name":"db-drill","job":"db","last_result":"success"`) ||
		!strings.Contains(res.Stdout, `"last_result":"failed"`) || !strings.Contains(res.Stdout, "drill db-drill-wrong failed") {
		t.Errorf("status with drills:\n%s", res)
	}
}

// TestDrillMySQL: a drill of a MariaDB job restores the dump into a
// scratch server and runs its SQL checks.
func TestDrillMySQL(t *testing.T) {
	my := testsrv.MariaDB(t)
	my.Exec(t, "CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT PRIMARY KEY, total DECIMAL(10,2))",
		"INSERT INTO shop.orders VALUES (1, 9.50), (2, 12.25), (3, 100.00)")
	pe := newPlanEnv(t, `  - name: shop
    source: {type: mysql, dsn: env:MYDSN, databases: [shop]}
    schedule: every 1h
    repository: main
drills:
  - name: shop-drill
    job: shop
    validate:
      checks: [{sql: "SELECT COUNT(*), SUM(total) FROM orders", database: shop, expect: "3\t121.75"}]
`)
	pe.env["MYDSN"] = my.DSN()
	testutil.Expect(t, pe.run("run", "--plan", pe.plan, "shop"), 0)
	res := testutil.Expect(t, pe.run("-v", "drill", "--plan", pe.plan, "shop-drill"), 0)
	if !strings.Contains(res.Stdout, "drill shop-drill passed") {
		t.Errorf("drill: %s", res)
	}
}
