package cli_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/daemon"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// TestJobFailureReasonsReachEveryChannel is issue 16, acceptance 1: a job
// that fails — its source path is missing, its repository is not
// initialised, the password is wrong, the database is down — reports why
// in bunker run's text and JSON, in the on_failure hook's $BUNKER_ERROR,
// and, run by the daemon, in its log, its API, the webhooks and the
// healthchecks /fail ping. Before, everything after "failed (exit 1): "
// was empty (the reason went to the child's JSON on stdout; the runner
// read stderr).
func TestJobFailureReasonsReachEveryChannel(t *testing.T) {
	var mu sync.Mutex
	bodies := map[string][]string{} // path → bodies
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies[r.URL.Path] = append(bodies[r.URL.Path], string(b))
		mu.Unlock()
	}))
	defer hooks.Close()
	received := func(path string) string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(bodies[path], "\n")
	}

	pe := newPlanEnv(t, "")
	empty := filepath.Join(pe.dir, "never-initialised")
	dbPort := strconv.Itoa(testsrv.FreePort(t, 0)) // nothing listens there
	pe.env["EMPTY"] = empty
	pe.env["WRONG_PW"] = "not-the-password"
	pe.env["API_TOKEN"] = "reasons-token"
	pe.env["PG_DSN"] = "postgres://bunker@127.0.0.1:" + dbPort + "/app?sslmode=disable&connect_timeout=3"
	cases := []struct{ job, want string }{
		{"missing", "gone-dir"},
		{"uninit", "does not exist"},
		{"wrongpw", "wrong password"},
		{"dbdown", dbPort},
	}
	var b strings.Builder
	b.WriteString(`repositories:
  - {name: main, location: "${MAIN}", password: "env:MAIN_PW"}
  - {name: empty, location: "${EMPTY}", password: "env:MAIN_PW"}
  - {name: wrong, location: "${MAIN}", password: "env:WRONG_PW"}
jobs:
`)
	src := map[string]string{
		"missing": `{type: files, paths: ["${DIR}/gone-dir"]}`,
		"uninit":  `{type: files, paths: ["${SRC}"]}`,
		"wrongpw": `{type: files, paths: ["${SRC}"]}`,
		"dbdown":  `{type: postgres, dsn: "env:PG_DSN", databases: [app]}`,
	}
	repo := map[string]string{"missing": "main", "uninit": "empty", "wrongpw": "wrong", "dbdown": "main"}
	for _, c := range cases {
		b.WriteString(`  - name: ` + c.job + `
    source: ` + src[c.job] + `
    schedule: every 24h
    repository: ` + repo[c.job] + `
    hooks:
      on_failure: [{command: 'printf %s "$BUNKER_ERROR" > "${DIR}/error-` + c.job + `"'}]
`)
	}
	b.WriteString(`notify:
  webhooks: [{url: "` + hooks.URL + `/webhook"}]
  healthchecks:
`)
	for _, c := range cases {
		b.WriteString(`    - {job: ` + c.job + `, url: "` + hooks.URL + `/hc/` + c.job + `"}
`)
	}
	b.WriteString(`daemon:
  api_token: env:API_TOKEN
`)
	must(t, os.WriteFile(pe.plan, []byte(b.String()), 0o600))

	for _, c := range cases {
		// bunker run, text and JSON.
		res := pe.run("run", "--plan", pe.plan, c.job)
		if res.Code == 0 || !strings.Contains(res.Stdout, "job "+c.job+" failed") || !strings.Contains(res.Stdout, c.want) {
			t.Errorf("%s: run text does not say why (%q):\n%s", c.job, c.want, res)
		}
		res = pe.run("--json", "run", "--plan", pe.plan, c.job)
		if m := res.Message(t, "summary"); !strings.Contains(str(m["error"]), c.want) {
			t.Errorf("%s: run --json error %q does not say why (%q)", c.job, m["error"], c.want)
		}
		// The on_failure hook.
		got, err := os.ReadFile(filepath.Join(pe.dir, "error-"+c.job))
		if err != nil || !strings.Contains(string(got), c.want) {
			t.Errorf("%s: $BUNKER_ERROR = %q (%v), want it to say %q", c.job, got, err, c.want)
		}
	}

	// The daemon: its API, its log, the webhook and the healthcheck.
	de := startDaemon(t, pe, daemon.NewFakeClock(time.Now()))
	for _, c := range cases {
		req, _ := http.NewRequest("POST", "http://"+de.addr+"/api/v1/jobs/"+c.job+"/run", nil)
		req.Header.Set("Authorization", "Bearer reasons-token")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: trigger: %s", c.job, resp.Status)
		}
		runs := de.waitRuns(c.job, 1)
		var last apiRun
		for _, r := range runs {
			if r.Trigger == "api" {
				last = r
			}
		}
		if last.Result != "failed" || !strings.Contains(last.Error, c.want) {
			t.Errorf("%s: API run %+v does not say why (%q)", c.job, last, c.want)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range cases {
		for !strings.Contains(received("/hc/"+c.job+"/fail"), c.want) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if got := received("/hc/" + c.job + "/fail"); !strings.Contains(got, c.want) {
			t.Errorf("%s: healthcheck /fail body %q does not say why (%q)", c.job, got, c.want)
		}
		for !strings.Contains(received("/webhook"), c.want) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.Contains(received("/webhook"), c.want) {
			t.Errorf("%s: no webhook body says why (%q):\n%s", c.job, c.want, received("/webhook"))
		}
		if !strings.Contains(de.stderr.String(), c.want) {
			t.Errorf("%s: the daemon log does not say why (%q)", c.job, c.want)
		}
	}
}
