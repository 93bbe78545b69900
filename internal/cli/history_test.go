package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/daemon"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

const historyJobs = `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    rto: 1h
drills:
  - name: good
    job: home
    validate:
      checks: [{command: "find . -name a.txt -exec cat {} +", expect: alpha}]
  - name: bad
    job: home
    validate:
      checks: [{command: "find . -name a.txt -exec cat {} +", expect: omega}]
`

// drillStates returns each drill's last result as bunker status --json
// says.
func drillStates(t *testing.T, pe *planEnv) map[string]string {
	t.Helper()
	res := pe.run("--json", "status", "--plan", pe.plan)
	var st struct {
		Drills []struct {
			Name   string `json:"name"`
			Result string `json:"last_result"`
			Error  string `json:"error"`
		} `json:"drills"`
	}
	for _, line := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		if strings.Contains(line, `"drills"`) {
			if err := json.Unmarshal([]byte(line), &st); err != nil {
				t.Fatalf("status --json: %v\n%s", err, res)
			}
		}
	}
	out := map[string]string{}
	for _, d := range st.Drills {
		out[d.Name] = d.Result
		if d.Error != "" {
			out[d.Name] += ": " + d.Error
		}
	}
	return out
}

// TestManualRunsJoinHistory is issue 16, acceptance 4: a drill (and a
// job) run by hand lands in the history status and the dashboard read —
// in the state database when no daemon runs, through the daemon's API
// while one holds it.
func TestManualRunsJoinHistory(t *testing.T) {
	pe := newPlanEnv(t, historyJobs)
	pe.env["XDG_STATE_HOME"] = filepath.Join(pe.dir, "xdg")
	testutil.Expect(t, pe.run("run", "--plan", pe.plan, "home"), 0)
	if got := drillStates(t, pe)["good"]; got != "never" {
		t.Fatalf("before any drill: good is %q", got)
	}
	testutil.Expect(t, pe.run("drill", "--plan", pe.plan, "good"), 0)
	testutil.Expect(t, pe.run("drill", "--plan", pe.plan, "bad"), 1)
	got := drillStates(t, pe)
	if got["good"] != "success" || !strings.HasPrefix(got["bad"], "failed: ") || !strings.Contains(got["bad"], "omega") {
		t.Errorf("after manual drills, no daemon: %v", got)
	}

	// With a daemon holding the history, the same commands go through
	// its API, and its status shows them.
	port := strconv.Itoa(testsrv.FreePort(t, 0))
	pe2 := newPlanEnv(t, historyJobs+`daemon:
  listen: 127.0.0.1:`+port+`
  api_token: env:API_TOKEN
  state_dir: ${DIR}/state
`)
	pe2.env["API_TOKEN"] = "history-token"
	de := startDaemon(t, pe2, daemon.NewFakeClock(time.Now()), "--listen", "127.0.0.1:"+port)
	testutil.Expect(t, pe2.run("run", "--plan", pe2.plan, "home"), 0)
	if runs := de.runs("home"); len(runs) != 1 || runs[0].Trigger != "manual" || runs[0].Result != "success" {
		t.Errorf("manual run in the daemon's history: %+v", runs)
	}
	res := testutil.Expect(t, pe2.run("drill", "--plan", pe2.plan, "bad"), 1)
	if strings.Contains(res.Stderr, "not recorded") {
		t.Fatalf("drill not recorded:\n%s", res)
	}
	var st daemon.APIStatus
	de.get("/api/v1/status", &st)
	found := false
	for _, d := range st.Drills {
		if d.Name == "bad" && d.LastRun != nil {
			found = true
			if d.LastRun.Result != "failed" || !strings.Contains(d.LastRun.Error, "omega") || d.LastRun.Trigger != "manual" {
				t.Errorf("drill bad in the daemon's status: %+v", d.LastRun)
			}
		}
	}
	if !found {
		t.Errorf("the manual drill is not in the daemon's status: %+v", st.Drills)
	}
}
