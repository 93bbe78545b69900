package cli_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/daemon"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// postRun starts job through the API with token.
func (de *daemonEnv) postRun(job, token string) {
	de.t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+de.addr+"/api/v1/jobs/"+job+"/run", nil)
	must(de.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	must(de.t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		de.t.Fatalf("POST run %s: %s %s", job, resp.Status, b)
	}
}

// TestDaemonRunLogHidesURLPassword is finding 7 of issue 15: a location
// whose password holds '@' kept everything after the first '@' in the
// run log, which the API serves. No part of the password may be stored.
func TestDaemonRunLogHidesURLPassword(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: leaky
daemon:
  api_token: env:API_TOKEN
`)
	// A second repository whose location's password holds '@'.
	plan := mustRead(t, pe.plan)
	plan = strings.Replace(plan, "jobs:\n", `  - name: leaky
    location: rest:http://user:p@ss@w0rd@127.0.0.1:1/repo
    password: env:MAIN_PW
jobs:
`, 1)
	writeFile(t, pe.plan, []byte(plan))
	pe.env["API_TOKEN"] = "s3cret-token"
	de := startDaemon(t, pe, daemon.NewFakeClock(time.Now()))
	de.postRun("home", "s3cret-token")
	runs := de.waitRuns("home", 1)
	var log string
	de.get("/api/v1/runs/"+runs[0].ID, &log)
	if !strings.Contains(log, " into rest:http://") {
		t.Fatalf("the run log does not show the repository:\n%s", log)
	}
	for _, part := range []string{"ss@w0rd", "w0rd", "p@ss"} {
		if strings.Contains(log, part) {
			t.Errorf("the run log keeps %q of the password:\n%s", part, log)
		}
	}
}

// TestDaemonSnapshotsNeedToken is finding 6 of issue 15: every
// unauthenticated GET /api/v1/snapshots ran the repository's password
// command and a full key derivation (30 at once took the daemon to
// 2 GB). Now 200 concurrent requests without the token, or with a wrong
// one, each get 401 and the password command never runs; with the read
// token (or the run token), concurrent listings share one repository
// open and the next ones come from the cache.
func TestDaemonSnapshotsNeedToken(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
daemon:
  api_token: env:API_TOKEN
  api_read_token: env:READ_TOKEN
`)
	counter := filepath.Join(pe.dir, "password-command-runs")
	plan := mustRead(t, pe.plan)
	plan = strings.Replace(plan, "password: env:MAIN_PW", "password: command:echo run >> '"+counter+"'; printf %s \"$(cat '"+filepath.Join(pe.dir, "pw")+"')\"", 1)
	writeFile(t, pe.plan, []byte(plan))
	writeFile(t, filepath.Join(pe.dir, "pw"), []byte(testPassword))
	pe.env["API_TOKEN"] = "run-token-1234"
	pe.env["READ_TOKEN"] = "read-token-5678"
	// The clock starts mid-hour, so moving it past the cache's TTL never
	// reaches the job's next slot (every 1h is aligned to the hour):
	// a backup then would run the password command too.
	de := startDaemon(t, pe, daemon.NewFakeClock(time.Now().Truncate(time.Hour).Add(10*time.Minute)))
	runs := func() int {
		b, err := os.ReadFile(counter)
		if os.IsNotExist(err) {
			return 0
		}
		must(t, err)
		return strings.Count(string(b), "run\n")
	}
	de.settle() // the first measurement has read the repositories
	before := runs()

	get := func(path, token string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, "http://"+de.addr+path, nil)
		if err != nil {
			return 0, err.Error()
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	type answer struct {
		code int
		body string
	}
	storm := func(n int, token func(i int) string, paths ...string) []answer {
		out := make([]answer, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i].code, out[i].body = get(paths[i%len(paths)], token(i))
			}()
		}
		wg.Wait()
		return out
	}

	paths := []string{"/api/v1/snapshots?repository=main", "/api/v1/snapshots?repository=copy", "/api/v1/snapshots?repository=nothing", "/api/v1/snapshots"}
	bad := []string{"", "Bearer", "read-token-567", "read-token-56789", "READ-TOKEN-5678", "run-token-123"}
	for i, a := range storm(200, func(i int) string { return bad[i%len(bad)] }, paths...) {
		if a.code != http.StatusUnauthorized || !strings.Contains(a.body, "wrong or missing token") {
			t.Errorf("unauthenticated request %d: %d %q, want 401", i, a.code, a.body)
		}
		if strings.Contains(a.body, "snapshot") && strings.Contains(a.body, "\"id\"") {
			t.Errorf("unauthenticated request %d got a listing: %q", i, a.body)
		}
	}
	if n := runs() - before; n != 0 {
		t.Fatalf("unauthenticated requests ran the password command %d times", n)
	}

	// Authorized: 40 at once, with either token, share one open.
	tokens := []string{"read-token-5678", "run-token-1234"}
	for i, a := range storm(40, func(i int) string { return tokens[i%2] }, "/api/v1/snapshots?repository=main") {
		if a.code != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(a.body), "[") {
			t.Errorf("authorized request %d: %d %q, want 200 and a list", i, a.code, a.body)
		}
	}
	if n := runs() - before; n < 1 || n > 2 {
		t.Errorf("40 concurrent authorized listings ran the password command %d times, want 1 (2 if one started late)", n)
	}
	// Cached: more requests within the TTL open nothing.
	mid := runs()
	for i, a := range storm(20, func(i int) string { return tokens[i%2] }, "/api/v1/snapshots?repository=main") {
		if a.code != http.StatusOK {
			t.Errorf("cached request %d: %d %q", i, a.code, a.body)
		}
	}
	if n := runs() - mid; n != 0 {
		t.Errorf("listings within %v opened the repository %d more times", daemon.SnapshotCacheTTL, n)
	}
	// After the TTL the next request opens it again, once.
	de.clock.Advance(daemon.SnapshotCacheTTL + time.Second)
	if code, body := get("/api/v1/snapshots?repository=main", "read-token-5678"); code != http.StatusOK {
		t.Errorf("after the TTL: %d %q", code, body)
	}
	if n := runs() - mid; n != 1 {
		t.Errorf("after the TTL the listing ran the password command %d times, want 1", n)
	}
}

// TestDaemonSnapshotsWithoutTokens: with no token in the plan, the
// endpoint that opens a repository is closed (403 naming the setting),
// and the password command does not run.
func TestDaemonSnapshotsWithoutTokens(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
`)
	counter := filepath.Join(pe.dir, "password-command-runs")
	plan := mustRead(t, pe.plan)
	plan = strings.Replace(plan, "password: env:MAIN_PW", "password: command:echo run >> '"+counter+"'; echo x", 1)
	writeFile(t, pe.plan, []byte(plan))
	de := startDaemon(t, pe, daemon.NewFakeClock(time.Now()))
	de.settle() // the first measurement has read the repositories
	before, _ := os.ReadFile(counter)
	resp, err := http.Get("http://" + de.addr + "/api/v1/snapshots?repository=main")
	must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "daemon.api_read_token") {
		t.Errorf("GET snapshots without configured tokens: %d %q, want 403 naming daemon.api_read_token", resp.StatusCode, b)
	}
	after, _ := os.ReadFile(counter)
	if len(after) != len(before) {
		t.Errorf("the password command ran for a refused request")
	}
}

// TestDaemonRefusesOpenAPIOnNetwork: without any token, the daemon
// serves its status, run logs and metrics to whoever reaches it, so it
// refuses to listen on a non-loopback address (the error names the
// settings that fix it) unless --insecure-open-api says a firewall
// guards it, and then it warns.
func TestDaemonRefusesOpenAPIOnNetwork(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
`)
	state := filepath.Join(pe.dir, "state")
	res := pe.run("daemon", "--plan", pe.plan, "--listen", "0.0.0.0:0", "--state-dir", state)
	if res.Code != 1 || !strings.Contains(res.Stderr, "daemon.api_read_token") || !strings.Contains(res.Stderr, "--insecure-open-api") ||
		!strings.Contains(res.Stderr, "127.0.0.1") {
		t.Errorf("a token-less daemon on all interfaces: want exit 1 naming the fixes:\n%s", res)
	}
	if strings.Contains(res.Stderr, "daemon started") {
		t.Errorf("the daemon started:\n%s", res)
	}
	// Explicitly allowed: it starts and says loudly what it does.
	de := startDaemon(t, pe, daemon.NewFakeClock(time.Now()), "--listen", "0.0.0.0:0", "--insecure-open-api")
	if !strings.Contains(de.stderr.String(), "INSECURE") {
		t.Errorf("no warning:\n%s", de.stderr.String())
	}
	de.stop()
}

// TestStatusSendsDaemonToken: bunker status reads the run history from
// the daemon's API at daemon.listen; a daemon with a read token answers
// it only with the token, which status resolves from the plan. Without
// it (its variable unset here) the answer is 401 and status falls back
// to the state database, which the running daemon holds, and warns.
func TestStatusSendsDaemonToken(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testsrv.FreePort(t, 0))
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
daemon:
  listen: `+addr+`
  api_read_token: env:READ_TOKEN
`)
	pe.env["READ_TOKEN"] = "status-read-token"
	de := startDaemon(t, pe, daemon.NewFakeClock(time.Now()), "--listen", addr)
	de.settle()
	state := filepath.Join(pe.dir, "state")
	res := pe.run("--json", "status", "--plan", pe.plan, "--state-dir", state)
	if strings.Contains(res.Stdout+res.Stderr, "run history") {
		t.Errorf("status with the token did not read the daemon's API:\n%s", res)
	}
	delete(pe.env, "READ_TOKEN")
	res = pe.run("--json", "status", "--plan", pe.plan, "--state-dir", state)
	if !strings.Contains(res.Stdout+res.Stderr, "is in use by another bunker daemon") {
		t.Errorf("status without the token: want the fallback's warning (the daemon refused it):\n%s", res)
	}
}
