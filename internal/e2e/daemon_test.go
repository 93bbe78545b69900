package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemonKill9: the real bunker daemon, killed with SIGKILL while a
// job runs, loses no history: after a restart the finished run is still
// there, the cut-off one is recorded as interrupted, and nothing runs it
// again.
func TestDaemonKill9(t *testing.T) {
	r := initRepo(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("alpha"))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	l.Close()
	plan := filepath.Join(dir, "plan.yaml")
	writeFile(t, plan, []byte(fmt.Sprintf(`repositories:
  - {name: main, location: %s, password: env:BUNKER_PASSWORD, site: onsite, medium: disk}
jobs:
  - name: fast
    source: {type: files, paths: [%s]}
    schedule: "@yearly"
    repository: main
  - name: slow
    source: {type: files, paths: [%s]}
    schedule: "@yearly"
    repository: main
    hooks:
      before: [{command: "echo $$ > %s/hook.pid; exec sleep 60"}]
daemon:
  listen: %s
  state_dir: %s/state
  api_token: env:API_TOKEN
`, r.dir, src, src, dir, addr, dir)))
	env := append(r.env, "API_TOKEN=tok")
	start := func() *exec.Cmd {
		cmd := exec.Command(bunkerBin, "daemon", "--plan", plan)
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		log, err := os.Create(filepath.Join(dir, fmt.Sprintf("daemon-%d.log", time.Now().UnixNano())))
		must(t, err)
		cmd.Stdout, cmd.Stderr = log, log
		must(t, cmd.Start())
		t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait(); log.Close() })
		deadline := time.Now().Add(30 * time.Second)
		for {
			if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
				resp.Body.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(log.Name())
				t.Fatalf("daemon did not come up:\n%s", b)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	post := func(job string) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/jobs/"+job+"/run", nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST run %s: %s", job, resp.Status)
		}
	}
	type run struct {
		ID, Job, Result, Reason string
	}
	runs := func() []run {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/v1/runs", nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		var out []run
		must(t, json.NewDecoder(resp.Body).Decode(&out))
		return out
	}
	waitFor := func(what string, ok func([]run) bool) []run {
		deadline := time.Now().Add(60 * time.Second)
		for {
			rs := runs()
			if ok(rs) {
				return rs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: runs %+v", what, rs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	d := start()
	post("fast")
	waitFor("fast succeeds", func(rs []run) bool { return len(rs) == 1 && rs[0].Result == "success" })
	post("slow")
	waitFor("slow runs", func(rs []run) bool { return len(rs) == 2 && rs[0].Result == "running" })
	// The hook is running: kill the daemon outright.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "hook.pid")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow job's hook did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	must(t, d.Process.Kill())
	_, _ = d.Process.Wait()
	if b, err := os.ReadFile(filepath.Join(dir, "hook.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}

	start()
	rs := runs()
	if len(rs) != 2 || rs[1].Job != "fast" || rs[1].Result != "success" || rs[0].Job != "slow" || rs[0].Result != "interrupted" {
		t.Fatalf("after kill -9 and restart: %+v", rs)
	}
	time.Sleep(500 * time.Millisecond)
	if rs := runs(); len(rs) != 2 {
		t.Fatalf("something ran again after the restart: %+v", rs)
	}
	r.mustRun("check")
}
