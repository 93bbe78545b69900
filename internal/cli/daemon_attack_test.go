package cli_test

import (
	"io"
	"net"
	"net/http"
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
		if method == http.MethodPost {
			req.Header.Set("Authorization", "Bearer s3cret-token")
		}
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
