package daemon

import (
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMetricsBuildAndProcess: /metrics serves bunker_build_info (1, with
// the version, Go release and repository format) beside the Go runtime
// and process collectors.
func TestMetricsBuildAndProcess(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	p, store := testPlanStore(t, twoJobs, clock, t.TempDir())
	defer store.Close()
	d, err := New(Options{Plan: p, Runner: &stubRunner{runs: map[string]int{}}, Store: store, Clock: clock, Metrics: NewMetrics("1.2.3-test")})
	if err != nil {
		t.Fatal(err)
	}
	w := serve(d.Handler(HandlerOptions{}), http.MethodGet, "/metrics", "")
	if w.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %q", w.Code, w.Body)
	}
	body := w.Body.String()
	build := regexp.MustCompile(`(?m)^bunker_build_info\{(.*)\} 1$`).FindStringSubmatch(body)
	if build == nil {
		t.Fatalf("no bunker_build_info 1 in:\n%s", body)
	}
	for _, label := range []string{`version="1.2.3-test"`, `go_version="` + runtime.Version() + `"`, `format="1"`} {
		if !strings.Contains(build[1], label) {
			t.Errorf("bunker_build_info{%s} lacks %s", build[1], label)
		}
	}
	want := []string{"go_goroutines", "go_memstats_alloc_bytes"}
	if runtime.GOOS == "linux" {
		want = append(want, "process_resident_memory_bytes", "process_open_fds")
	}
	for _, name := range want {
		if !regexp.MustCompile(`(?m)^` + name + ` `).MatchString(body) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
