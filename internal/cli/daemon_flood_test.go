package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/daemon"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

// floodMemoryLimit is issue 15's bound on the daemon under a flood of
// API requests (acceptance 3).
const floodMemoryLimit = 300 << 20

// TestDaemonAPIFloodMemory is acceptance 3 of issue 15: the real bunker
// daemon (this package's binary, built by the test) with a run token, a
// read token, and a repository with the production key derivation
// (argon2id, 64 MiB) whose password comes from a command. 200 concurrent
// requests without a valid token, spread over every endpoint that opens
// a repository or reveals the daemon's state, each get 401, the
// password command never runs, and the process's peak resident memory
// (VmHWM) stays under 300 MiB. Then 50 concurrent listings with the read
// token share one repository open and also stay under the bound.
func TestDaemonAPIFloodMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the daemon's peak memory from /proc")
	}
	if testing.Short() {
		t.Skip("builds the bunker binary")
	}
	dir := t.TempDir()
	bin := buildBunker(t, dir)
	env := append(testutil.CleanEnviron(), "HOME="+dir)
	bunker := func(ctx context.Context, extraEnv []string, args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(append([]string(nil), env...), extraEnv...)
		return cmd
	}

	// A repository with the default key derivation, its password in a
	// file that the plan's password command reads (and counts).
	repo, pwFile, counter := filepath.Join(dir, "repo"), filepath.Join(dir, "pw"), filepath.Join(dir, "password-command-runs")
	writeFile(t, pwFile, []byte(testPassword))
	if out, err := bunker(context.Background(), []string{"BUNKER_PASSWORD_FILE=" + pwFile}, "-r", repo, "init").CombinedOutput(); err != nil {
		t.Fatalf("bunker init: %v\n%s", err, out)
	}
	src := filepath.Join(dir, "src")
	writeFiles(t, src, map[string]string{"a.txt": "alpha", "sub/b.txt": "bravo"})
	const runToken, readToken = "flood-run-token-0123456789", "flood-read-token-9876543210"
	readFile := filepath.Join(dir, "read-token")
	writeFile(t, readFile, []byte(readToken+"\n"))
	addr := fmt.Sprintf("127.0.0.1:%d", testsrv.FreePort(t, 0))
	planFile := filepath.Join(dir, "plan.yaml")
	writeFile(t, planFile, []byte(fmt.Sprintf(`repositories:
  - name: main
    location: %s
    password: "command:echo run >> '%s'; cat '%s'"
jobs:
  - name: home
    source: {type: files, paths: ["%s"]}
    schedule: "@yearly"
    repository: main
daemon:
  listen: %s
  state_dir: %s
  api_token: env:FLOOD_API_TOKEN
  api_read_token: file:%s
`, repo, counter, pwFile, src, addr, filepath.Join(dir, "state"), readFile)))

	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path, auth string) (int, http.Header, []byte, error) {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return 0, nil, nil, err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b, err
	}
	logFile := filepath.Join(dir, "daemon.log")
	daemonLog := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	mustGet := func(path string, v any) {
		t.Helper()
		code, _, b, err := get(path, "Bearer "+readToken)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %v %s\n%s", path, code, err, b, daemonLog())
		}
		must(t, json.Unmarshal(b, v))
	}
	// waitMeasured waits until the daemon's measurement shows snapshot
	// as home's newest ("" : any measurement).
	waitMeasured := func(snapshot string) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); ; {
			var st daemon.APIStatus
			mustGet("/api/v1/status", &st)
			if st.Status != nil && (snapshot == "" || len(st.Status.Jobs) == 1 && st.Status.Jobs[0].LastSnapshot == snapshot) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no measurement showing %q: %+v\n%s", snapshot, st.Status, daemonLog())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// start runs bunker daemon until stop or the test's end.
	start := func() (pid int, stop func()) {
		t.Helper()
		log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		must(t, err)
		d := bunker(context.Background(), []string{"FLOOD_API_TOKEN=" + runToken}, "daemon", "--plan", planFile, "--measure-every", "1h")
		d.Stdout, d.Stderr = log, log
		d.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		must(t, d.Start())
		var once sync.Once
		stop = func() {
			once.Do(func() {
				_ = d.Process.Signal(syscall.SIGTERM)
				done := make(chan struct{})
				go func() { _ = d.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					_ = syscall.Kill(-d.Process.Pid, syscall.SIGKILL)
					<-done
				}
				log.Close()
			})
		}
		t.Cleanup(stop)
		for deadline := time.Now().Add(60 * time.Second); ; {
			if code, _, _, err := get("/healthz", ""); err == nil && code == http.StatusOK {
				return d.Process.Pid, stop
			}
			if time.Now().After(deadline) {
				t.Fatalf("the daemon did not come up:\n%s", daemonLog())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A backup through the API: a run with a log, a snapshot to list.
	pid, stop := start()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/jobs/home/run", nil)
	req.Header.Set("Authorization", "Bearer "+runToken)
	resp, err := client.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST run: %s\n%s", resp.Status, daemonLog())
	}
	var runs []apiRun
	for deadline := time.Now().Add(2 * time.Minute); ; {
		mustGet("/api/v1/runs?job=home", &runs)
		if len(runs) == 1 && runs[0].Result != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backup did not finish: %+v\n%s", runs, daemonLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if runs[0].Result != "success" {
		t.Fatalf("backup: %+v\n%s", runs[0], daemonLog())
	}
	waitMeasured(runs[0].Snapshot)
	t.Logf("daemon right after a backup and its measurement: VmRSS %s, VmHWM %s (the engine's, not the API's)",
		mib(procStatus(t, pid, "VmRSS")), mib(procStatus(t, pid, "VmHWM")))
	// The flood meets the daemon as it spends its time: between runs,
	// after its start-up measurement (a restart keeps the history).
	stop()
	pid, _ = start()
	waitMeasured(runs[0].Snapshot)
	commandRuns := func() int {
		b, err := os.ReadFile(counter)
		must(t, err)
		return strings.Count(string(b), "run\n")
	}
	before := commandRuns()
	t.Logf("daemon idle after its start-up measurement: VmRSS %s, VmHWM %s",
		mib(procStatus(t, pid, "VmRSS")), mib(procStatus(t, pid, "VmHWM")))

	// storm sends n GETs at once, each on a connection of its own
	// (released together); request i goes to path(i) with header
	// auth(i).
	storm := func(n int, path, auth func(i int) string) []floodAnswer {
		out := make([]floodAnswer, n)
		var ready, wg sync.WaitGroup
		start := make(chan struct{})
		ready.Add(n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ready.Done()
				<-start
				out[i].path, out[i].auth = path(i), auth(i)
				out[i].code, out[i].header, out[i].body, out[i].err = get(out[i].path, out[i].auth)
			}()
		}
		ready.Wait()
		close(start)
		wg.Wait()
		return out
	}

	t.Run("unauthenticated", func(t *testing.T) {
		hwm0 := resetPeak(t, pid)
		paths := []string{"/api/v1/snapshots?repository=main", "/api/v1/status", "/api/v1/runs", "/api/v1/runs?job=home&limit=1000",
			"/api/v1/runs/" + runs[0].ID, "/api/v1/sizes/main", "/metrics", "/api/v1/snapshots?repository=nothing"}
		long := "Bearer " + strings.Repeat("x", 32<<10)
		bad := []string{"", "Bearer", "Bearer ", "Bearer " + readToken[:len(readToken)-1], "Bearer " + readToken + "0",
			"Bearer " + strings.ToUpper(readToken), "Basic " + readToken, readToken, "Bearer " + runToken[1:], long}
		answers := storm(200, func(i int) string { return paths[i%len(paths)] }, func(i int) string { return bad[i%len(bad)] })
		for i, a := range answers {
			switch {
			case a.err != nil:
				t.Errorf("request %d (GET %s): %v", i, a.path, a.err)
			case a.code != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") ||
				!bytes.Contains(a.body, []byte(`"error"`)):
				t.Errorf("request %d (GET %s, %.20q): %d %q, want 401 with WWW-Authenticate: Bearer", i, a.path, a.auth, a.code, a.body)
			case bytes.Contains(a.body, []byte("home")) || bytes.Contains(a.body, []byte("bunker_")) || bytes.Contains(a.body, []byte(repo)):
				t.Errorf("request %d (GET %s) leaked: %q", i, a.path, a.body)
			}
		}
		if n := commandRuns() - before; n != 0 {
			t.Errorf("unauthenticated requests ran the password command %d times", n)
		}
		hwm := procStatus(t, pid, "VmHWM")
		t.Logf("200 concurrent unauthenticated requests: peak RSS %s (%s before them)", mib(hwm), mib(hwm0))
		if hwm >= floodMemoryLimit {
			t.Errorf("peak RSS %s under 200 unauthenticated requests, want under %s", mib(hwm), mib(floodMemoryLimit))
		}
	})

	t.Run("read-token-listings", func(t *testing.T) {
		hwm0 := resetPeak(t, pid)
		mid := commandRuns()
		answers := storm(50, func(int) string { return "/api/v1/snapshots?repository=main" }, func(int) string { return "Bearer " + readToken })
		for i, a := range answers {
			var list []daemon.SnapshotInfo
			if a.err != nil || a.code != http.StatusOK || json.Unmarshal(a.body, &list) != nil || len(list) != 1 || list[0].ID != runs[0].Snapshot {
				t.Errorf("listing %d: %d %v %q, want the one snapshot %s", i, a.code, a.err, a.body, runs[0].Snapshot)
			}
		}
		if n := commandRuns() - mid; n != 1 {
			t.Errorf("50 concurrent listings ran the password command %d times, want 1 (one shared open)", n)
		}
		hwm := procStatus(t, pid, "VmHWM")
		t.Logf("50 concurrent listings with the read token: peak RSS %s (%s before them)", mib(hwm), mib(hwm0))
		if hwm >= floodMemoryLimit {
			t.Errorf("peak RSS %s under 50 listings, want under %s", mib(hwm), mib(floodMemoryLimit))
		}
	})
}

type floodAnswer struct {
	path, auth string
	code       int
	header     http.Header
	body       []byte
	err        error
}

// buildBunker builds cmd/bunker into dir and returns the binary's path.
func buildBunker(t *testing.T, dir string) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build bunker: %v", err)
	}
	bin := filepath.Join(dir, "bunker")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goCmd, "build", "-o", bin, "github.com/bunkerbackup/bunker/cmd/bunker").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// procStatus returns a "kB" field of /proc/PID/status in bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			must(t, err)
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// resetPeak sets the process's VmHWM back to its current RSS (Linux 4.0
// and later), so that the next reading is the peak of what follows,
// and returns it. Where that is refused, VmHWM stays the peak since the
// start, which only makes the check stricter.
func resetPeak(t *testing.T, pid int) int64 {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Logf("cannot reset the peak RSS (%v): the readings include the start", err)
	}
	return procStatus(t, pid, "VmHWM")
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
