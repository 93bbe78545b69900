package cli_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/daemon"
)

// TestDaemonRefusesForeignHost is a DNS-rebinding attack on a loopback
// daemon: a web page on evil.example whose name now resolves to
// 127.0.0.1 reads the API, the metrics and the dashboard with its own
// Host header. Every such request is refused (421) without a byte of
// data; the listen address, localhost and the plan's allowed_hosts are
// served.
func TestDaemonRefusesForeignHost(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
daemon:
  api_token: env:API_TOKEN
  allowed_hosts: [bunker.example.test]
`)
	pe.env["API_TOKEN"] = "s3cret-token"
	de := startDaemon(t, pe, daemon.NewFakeClock(time.Now()), "--allowed-host", "ops.example.test:443")
	_, port, err := net.SplitHostPort(de.addr)
	must(t, err)

	do := func(method, path, host string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+de.addr+path, nil)
		must(t, err)
		req.Host = host
		// With the token: the Host is what is refused.
		req.Header.Set("Authorization", "Bearer s3cret-token")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	paths := []string{"/api/v1/status", "/api/v1/runs", "/api/v1/runs?job=home", "/api/v1/runs/1",
		"/api/v1/snapshots?repository=main", "/api/v1/sizes/main", "/metrics", "/", "/index.html",
		"/assets/app.js", "/assets/app.css", "/nothing"}
	for _, host := range []string{"evil.example:" + port, "evil.example", "EVIL.example.:" + port, "localhost.evil.example:" + port,
		"127.0.0.1.evil.example:" + port, "bunker.example.test.evil.example:" + port, "ops.example.test:" + port} {
		for _, path := range paths {
			code, body := do(http.MethodGet, path, host)
			if code != http.StatusMisdirectedRequest || !strings.Contains(body, "daemon.allowed_hosts") {
				t.Errorf("GET %s with Host %s: %d %q, want 421", path, host, code, body)
			}
			if strings.Contains(body, "home") || strings.Contains(body, "bunker_") || strings.Contains(body, "<html") {
				t.Errorf("GET %s with Host %s leaked data: %q", path, host, body)
			}
		}
		if code, body := do(http.MethodPost, "/api/v1/jobs/home/run", host); code != http.StatusMisdirectedRequest {
			t.Errorf("POST run with Host %s: %d %q, want 421", host, code, body)
		}
	}
	if runs := de.runs("home"); len(runs) != 0 {
		t.Errorf("a refused POST started a run: %+v", runs)
	}

	// The names the daemon answers to.
	for _, host := range []string{de.addr, "localhost:" + port, "LocalHost:" + port, "[::1]:" + port, "127.0.0.1",
		"bunker.example.test:" + port, "bunker.example.test", "ops.example.test:443"} {
		for _, path := range []string{"/api/v1/status", "/metrics", "/", "/assets/app.js"} {
			if code, body := do(http.MethodGet, path, host); code != http.StatusOK {
				t.Errorf("GET %s with Host %s: %d %q, want 200", path, host, code, body)
			}
		}
	}
	// /healthz says nothing but ok, to any probe.
	if code, body := do(http.MethodGet, "/healthz", "evil.example:"+port); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
}

// TestDaemonHookSecrets: the daemon runs with the repository password,
// the API token and cloud and libpq secrets in its environment. Its
// hooks get none of them unless the plan names one, yet get the
// documented variables; and whatever a hook prints — its environment, a
// secrets file — reaches the run history, the API, the notifications
// and the daemon's log only masked.
func TestDaemonHookSecrets(t *testing.T) {
	secrets := map[string]string{
		"BUNKER_PASSWORD":       "proc-bunker-password-1",
		"API_TOKEN":             "api-token-secret-2",
		"AWS_SECRET_ACCESS_KEY": "aws-secret-key-3",
		"AZURE_STORAGE_KEY":     "azure-storage-key-4",
		"PGPASSWORD":            "pg-password-5",
		"MAIN_PW":               testPassword,
	}
	hooks := newHookReceiver(t)
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    hooks:
      before:
        - command: "env > ${DIR}/before.env; env; echo pw=$BUNKER_PASSWORD; cat ${DIR}/secrets.txt"
          env: [EXTRA_OK, "LITERAL=one", UNSET_VAR]
      after:
        - command: "env > ${DIR}/after.env; echo pg=$PGPASSWORD"
          env: [PGPASSWORD]
  - name: broken
    source: {type: files, paths: ["${DIR}/missing"]}
    schedule: every 1h
    repository: main
    hooks:
      on_failure:
        - command: "env > ${DIR}/failure.env; env; cat ${DIR}/secrets.txt >&2; exit 3"
notify:
  webhooks: [{url: "${HOOK}"}]
daemon:
  api_token: env:API_TOKEN
`)
	pe.env["HOOK"] = hooks.srv.URL
	pe.env["EXTRA_OK"] = "extra-value"
	for k, v := range secrets {
		pe.env[k] = v
		t.Setenv(k, v) // the daemon's process environment too
	}
	var all []string
	for _, v := range secrets {
		all = append(all, v)
	}
	writeFiles(t, pe.dir, map[string]string{"secrets.txt": strings.Join(all, "\n") + "\n"})
	de := startDaemon(t, pe, daemon.NewFakeClock(time.Now()))
	must(t, de.d.Trigger("home"))
	must(t, de.d.Trigger("broken"))
	home, broken := de.waitRuns("home", 1)[0], de.waitRuns("broken", 1)[0]
	if home.Result != "success" || broken.Result != "failed" {
		t.Fatalf("runs: %+v %+v\n%s", home, broken, de.stderr.String())
	}

	// What the hooks really got.
	env := func(name string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(mustRead(t, filepath.Join(pe.dir, name)), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				m[k] = v
			}
		}
		return m
	}
	before, after, failure := env("before.env"), env("after.env"), env("failure.env")
	for name, m := range map[string]map[string]string{"before": before, "after": after, "on_failure": failure} {
		for k, v := range m {
			for sk, sv := range secrets {
				if strings.Contains(v, sv) && !(name == "after" && k == "PGPASSWORD") {
					t.Errorf("%s hook got %s (%s) in %s", name, sk, sv, k)
				}
			}
			if k == "BUNKER_PASSWORD" || k == "API_TOKEN" || k == "AWS_SECRET_ACCESS_KEY" || k == "MAIN_PW" {
				t.Errorf("%s hook got %s", name, k)
			}
		}
		if m["PATH"] == "" || m["BUNKER_JOB"] == "" {
			t.Errorf("%s hook lacks PATH or BUNKER_JOB: %v", name, m)
		}
	}
	if before["EXTRA_OK"] != "extra-value" || before["LITERAL"] != "one" {
		t.Errorf("before hook lacks what the plan passes: %v", before)
	}
	if _, ok := before["UNSET_VAR"]; ok {
		t.Errorf("an unset variable was passed as empty: %v", before)
	}
	if after["PGPASSWORD"] != secrets["PGPASSWORD"] || after["BUNKER_RESULT"] != "success" || after["BUNKER_SNAPSHOT"] == "" {
		t.Errorf("after hook: want the PGPASSWORD it names, BUNKER_RESULT and BUNKER_SNAPSHOT: %v", after)
	}
	if failure["BUNKER_JOB"] != "broken" || failure["BUNKER_RESULT"] != "failed" || failure["BUNKER_ERROR"] == "" {
		t.Errorf("on_failure hook lacks its variables: %v", failure)
	}

	// What was kept and shown.
	var shown []string
	for _, id := range []string{home.ID, broken.ID} {
		var s string
		de.get("/api/v1/runs/"+id, &s)
		shown = append(shown, s)
		if !strings.Contains(s, "[redacted]") || !strings.Contains(s, "BUNKER_JOB=") {
			t.Errorf("run %s: want its hook output, masked:\n%s", id, s)
		}
	}
	var status, runs string
	de.get("/api/v1/status", &status)
	de.get("/api/v1/runs", &runs)
	if !strings.Contains(shown[0], "pg=[redacted]") || !strings.Contains(shown[0], "pw=\\n") {
		t.Errorf("home run log:\n%s", shown[0])
	}
	de.stop()
	hooks.mu.Lock()
	events := fmt.Sprint(hooks.events)
	hooks.mu.Unlock()
	shown = append(shown, status, runs, events, de.stderr.String())
	for _, s := range shown {
		for k, v := range secrets {
			if strings.Contains(s, v) {
				t.Errorf("%s (%s) leaked:\n%s", k, v, s)
			}
		}
	}
}
