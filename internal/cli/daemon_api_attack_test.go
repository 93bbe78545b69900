package cli_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/daemon"
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
	if !strings.Contains(log, "$ bunker -r rest:http://") {
		t.Fatalf("the run log does not show the command:\n%s", log)
	}
	for _, part := range []string{"ss@w0rd", "w0rd", "p@ss"} {
		if strings.Contains(log, part) {
			t.Errorf("the run log keeps %q of the password:\n%s", part, log)
		}
	}
}
