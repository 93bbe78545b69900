package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// countingRunner counts the snapshot listings it is asked for.
type countingRunner struct {
	stubRunner
	listings atomic.Int32
}

func (c *countingRunner) Snapshots(ctx context.Context, p *plan.Plan, repo string) ([]SnapshotInfo, error) {
	c.listings.Add(1)
	return nil, nil
}

// readPaths are the GETs that reveal the daemon's state.
var readPaths = []string{"/api/v1/status", "/api/v1/runs", "/api/v1/runs?job=a&limit=5", "/api/v1/runs/1",
	"/api/v1/sizes/r", "/metrics", "/api/v1/snapshots?repository=r"}

func serve(h http.Handler, method, path, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://127.0.0.1:9876"+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestAPITokens: with a token configured, every GET that reveals state
// needs the read or the run token, and a refusal (401, WWW-Authenticate:
// Bearer, a JSON error) comes before any listing; runs need the run
// token; /healthz and the dashboard stay open. Without tokens the
// daemon's own state is served, listings answer 403 and runs 403.
func TestAPITokens(t *testing.T) {
	runner := &countingRunner{stubRunner: stubRunner{runs: map[string]int{}}}
	clock := NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	p, store := testPlanStore(t, twoJobs, clock, t.TempDir())
	defer store.Close()
	// Not running: the handler needs none of the scheduler.
	d, err := New(Options{Plan: p, Runner: runner, Store: store, Clock: clock, Metrics: NewMetrics("test")})
	if err != nil {
		t.Fatal(err)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) })

	h := d.Handler(HandlerOptions{Token: "run-token", ReadToken: "read-token", Extra: page})
	wrong := []string{"", "Bearer", "Bearer ", "Bearer read-token-", "Bearer read-toke", "Basic read-token", "read-token",
		"Bearer READ-TOKEN", "Bearer run-token\x00"}
	for _, path := range readPaths {
		for _, auth := range wrong {
			w := serve(h, http.MethodGet, path, auth)
			if w.Code != http.StatusUnauthorized || !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") ||
				!strings.Contains(w.Body.String(), `"error"`) || w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("GET %s with %q: %d %v %q, want 401", path, auth, w.Code, w.Header(), w.Body)
			}
			if strings.Contains(w.Body.String(), "bunker_") || strings.Contains(w.Body.String(), `"jobs"`) {
				t.Errorf("GET %s with %q leaked: %q", path, auth, w.Body)
			}
		}
		for _, auth := range []string{"Bearer read-token", "Bearer run-token", "bearer read-token"} {
			w := serve(h, http.MethodGet, path, auth)
			if w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
				t.Errorf("GET %s with %q: %d %q", path, auth, w.Code, w.Body)
			}
		}
	}
	if n := runner.listings.Load(); n != 1 {
		t.Errorf("%d listings, want 1 (the authorized ones share the cache; refused ones list nothing)", n)
	}
	for _, auth := range []string{"", "Bearer read-token"} {
		if w := serve(h, http.MethodPost, "/api/v1/jobs/a/run", auth); w.Code != http.StatusUnauthorized {
			t.Errorf("POST run with %q: %d, want 401", auth, w.Code)
		}
	}
	for _, path := range []string{"/healthz", "/"} {
		if w := serve(h, http.MethodGet, path, ""); w.Code != http.StatusOK {
			t.Errorf("GET %s without a token: %d, want 200", path, w.Code)
		}
	}

	// A read token alone closes the reads just the same.
	h = d.Handler(HandlerOptions{ReadToken: "read-token"})
	if w := serve(h, http.MethodGet, "/api/v1/status", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("read token only, GET status without it: %d", w.Code)
	}
	if w := serve(h, http.MethodPost, "/api/v1/jobs/a/run", "Bearer read-token"); w.Code != http.StatusForbidden {
		t.Errorf("read token only, POST run: %d, want 403 (no run token configured)", w.Code)
	}

	// No token: the daemon's own state is open, listings and runs are not.
	h = d.Handler(HandlerOptions{})
	before := runner.listings.Load()
	for _, path := range readPaths {
		w := serve(h, http.MethodGet, path, "")
		want := http.StatusOK
		if strings.HasPrefix(path, "/api/v1/snapshots") {
			want = http.StatusForbidden
		}
		if path == "/api/v1/runs/1" {
			want = http.StatusNotFound
		}
		if w.Code != want {
			t.Errorf("no tokens: GET %s: %d %q, want %d", path, w.Code, w.Body, want)
		}
	}
	if w := serve(h, http.MethodPost, "/api/v1/jobs/a/run", "Bearer x"); w.Code != http.StatusForbidden {
		t.Errorf("no tokens: POST run: %d, want 403", w.Code)
	}
	if runner.listings.Load() != before {
		t.Error("a refused listing opened the repository")
	}
}
