package cli_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/bunkerbackup/bunker/internal/daemon"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/bunkerbackup/bunker/internal/web"
)

// TestDashboard drives the daemon's dashboard in headless Chromium: a
// files job that succeeds and a drill whose check fails have run; the page
// shows the job with its RPO badge, the failed drill in red, the snapshots
// of a repository once it is selected and a run's log once it is clicked,
// with no JavaScript error and no request beyond the daemon. Full-page
// screenshots are kept as artifacts.
func TestDashboard(t *testing.T) {
	chrome := lookChromium()
	if chrome == "" {
		testsrv.Missing(t, "chromium is not installed")
	}
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    copies: [{repository: copy}]
    rpo: 3h
    rto: 1h
drills:
  - name: home-drill
    job: home
    schedule: every 1h
    validate: {checks: [{command: "cat missing-file", expect: "x"}]}
daemon:
  api_read_token: env:READ_TOKEN
`)
	pe.env["READ_TOKEN"] = "dashboard-read-token"
	// Start on a slot an hour back, so that after two slots the daemon's
	// time is (up to an hour) after the real time the snapshots carry.
	clock := daemon.NewFakeClock(time.Now().Truncate(time.Hour).Add(-time.Hour))
	de := startDaemon(t, pe, clock)
	// Two slots: two backups, two drills. The first drill may run before
	// the first backup is there; the second restores it and fails its
	// check. Either way every drill run fails.
	for i := 1; i <= 2; i++ {
		de.advance(time.Hour)
		de.waitRuns("home", i)
		de.waitRuns("home-drill", i)
	}
	homeRuns := de.waitRuns("home", 2)
	drillRuns := de.waitRuns("home-drill", 2)
	for _, r := range homeRuns {
		if r.Result != "success" || r.Snapshot == "" {
			t.Fatalf("home run: %+v\n%s", r, de.stderr.String())
		}
	}
	if drillRuns[0].Result != "failed" {
		t.Fatalf("drill run: %+v", drillRuns[0])
	}
	newest := homeRuns[0].Snapshot
	waitMeasured(t, de, newest)

	base := "http://" + de.addr + "/"
	resp, err := http.Get(base)
	must(t, err)
	resp.Body.Close()
	if got := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(got, "default-src 'self'") || got != web.ContentSecurityPolicy {
		t.Errorf("Content-Security-Policy %q", got)
	}

	b := newBrowser(t, chrome, base)
	b.do(chromedp.Navigate(base))
	// The plan has a read token: every GET of the page is refused until
	// it is typed, and the page says so instead of showing data.
	b.poll(`!document.getElementById("token-help").hidden`)
	if got := b.text("#summary"); !strings.Contains(got, "needs its read token") {
		t.Errorf("summary without the token: %q", got)
	}
	if got := b.text("#jobs tbody"); strings.Contains(got, "home") {
		t.Errorf("the jobs table shows data without the token: %q", got)
	}
	b.screenshot("token")
	setToken := func(tok string) {
		b.eval(fmt.Sprintf(`(() => { const s = document.getElementById("api-token"); s.value = %q; s.dispatchEvent(new Event("change")); return "" })()`, tok))
	}
	setToken("not-the-read-token")
	b.poll(`document.getElementById("summary").textContent.includes("refused")`)
	setToken("dashboard-read-token")
	b.poll(`document.body.dataset.loaded === "true" && document.querySelector('#drills tr[data-drill]') !== null`)
	if b.eval(`String(document.getElementById("token-help").hidden)`) != "true" {
		t.Error("the token prompt stays after the token was accepted")
	}
	// The browser logs each refused request; those are all it may log.
	if n := b.expect401s(); n == 0 {
		t.Error("no request was refused before the token was typed")
	}
	b.screenshot("overview")

	// Jobs: home with its RPO badge (a backup an hour old against 3h: ok).
	if got := b.text(`#jobs tr[data-job="home"] td:first-child`); !strings.Contains(got, "home") {
		t.Errorf("jobs row: %q", got)
	}
	if got := b.text(`#jobs tr[data-job="home"] .badge.ok`); got != "ok" {
		t.Errorf("RPO badge of home: %q", got)
	}
	if got := b.text(`#jobs tr[data-job="home"]`); !strings.Contains(got, "3.0h") || !strings.Contains(got, "files") {
		t.Errorf("jobs row lacks the RPO or the source: %q", got)
	}
	// 3-2-1: the live data, main (disk, onsite) and copy (object, offsite).
	if got := b.text(`#datasets tr[data-dataset="home"] .badge`); got != "meets the rule" {
		t.Errorf("3-2-1 of home: %q", got)
	}

	// Drills: the failed drill is red, row and badge.
	for _, sel := range []string{`#drills tr[data-drill="home-drill"].failed`, `#drills tr[data-drill="home-drill"] .badge.failed`} {
		color := b.eval(fmt.Sprintf(`getComputedStyle(document.querySelector(%q)).color`, sel))
		var r, g, bl int
		if _, err := fmt.Sscanf(color, "rgb(%d, %d, %d)", &r, &g, &bl); err != nil || r < 150 || g > 90 || bl > 90 {
			t.Errorf("%s: color %q is not red", sel, color)
		}
	}
	if got := b.text(`#drills tr[data-drill="home-drill"]`); !strings.Contains(got, "cat missing-file") {
		t.Errorf("the drill row does not say why it failed: %q", got)
	}
	if n := b.eval(`String(document.querySelectorAll('#drills tr[data-drill="home-drill"] svg circle').length)`); n != "2" {
		t.Errorf("restore chart has %s points, want 2", n)
	}
	if n := b.eval(`String(document.querySelectorAll('#repositories svg').length)`); n != "2" {
		t.Errorf("%s size charts, want 2", n)
	}

	// Snapshot browser: selecting main lists both snapshots, with the
	// read token typed above.
	b.eval(`(() => { const s = document.getElementById("repo-select"); s.value = "main"; s.dispatchEvent(new Event("change")); return "" })()`)
	b.poll(fmt.Sprintf(`document.querySelector('#snapshots tr[data-snapshot=%q]') !== null`, newest))
	if got := b.text(`#snapshots tbody`); !strings.Contains(got, newest[:8]) || !strings.Contains(got, homeRuns[1].Snapshot[:8]) || !strings.Contains(got, "job=home") {
		t.Errorf("snapshot list: %q", got)
	}
	b.screenshot("snapshots")

	// Run log: the failed drill's log, from the drills table.
	b.do(chromedp.Click(chromedp.CSS(`#drills tr[data-drill="home-drill"] button[data-run]`)))
	b.poll(`document.getElementById("run-log-text").textContent.includes("$ cat missing-file")`)
	if got := b.text(`#run-log-error`); !strings.Contains(got, "check \"cat missing-file\"") {
		t.Errorf("run log error: %q", got)
	}
	b.screenshot("run-log")
	// And a backup's log, from the recent runs table.
	b.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#runs tr[data-run=%q] button`, homeRuns[0].ID))))
	b.poll(fmt.Sprintf(`document.getElementById("run-log-meta").textContent.includes(%q)`, homeRuns[0].ID))
	if got := b.text(`#run-log-text`); got == "" {
		t.Error("the backup run shows no log")
	}

	b.check()
}

// waitMeasured waits until the daemon's measurement has seen snapshot id
// as the newest of home.
func waitMeasured(t *testing.T, de *daemonEnv, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st daemon.APIStatus
		de.get("/api/v1/status", &st)
		if st.Status != nil && len(st.Status.Jobs) == 1 && st.Status.Jobs[0].LastSnapshot == id {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the measurement does not show snapshot %s: %+v", id, st.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lookChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p := testsrv.LookTool(name, ""); p != "" {
			return p
		}
	}
	return ""
}

// browser is one headless Chromium tab with everything it reports
// recorded: console errors, exceptions, browser log errors (CSP
// violations, failed loads) and requests that leave base.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	problems []string
	offsite  []string
}

func newBrowser(t *testing.T, chrome, base string) *browser {
	t.Helper()
	b := &browser{t: t, base: base}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // root in CI and here
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		// Off the network: names resolve to nothing and anything that is
		// not loopback goes to a closed port; loopback bypasses the proxy.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("proxy-server", fmt.Sprintf("http://127.0.0.1:%d", testsrv.FreePort(t, 0))),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,OptimizationHints,MediaRouter,AutofillServerCommunication"),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b.ctx = ctx
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chrome, err)
	}
	return b
}

// listen runs on the tab's reading goroutine: record and return.
func (b *browser) listen(ev any) {
	var problem, request string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				if a.Description != "" {
					args = append(args, a.Description)
				} else {
					args = append(args, string(a.Value))
				}
			}
			problem = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		problem = fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, d.Text)
		if d.Exception != nil {
			problem += " " + d.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			problem = fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	case *network.EventRequestWillBeSent:
		if u := ev.Request.URL; !strings.HasPrefix(u, b.base) {
			request = u
		}
	}
	if problem == "" && request == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if problem != "" {
		b.problems = append(b.problems, problem)
	}
	if request != "" {
		b.offsite = append(b.offsite, request)
	}
}

// run runs one action with a timeout, failing the test on an error.
func run[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.screenshot("failure")
		b.t.Fatalf("%s: %v\nproblems: %v", what, err, b.reported())
	}
	return v
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	run(b, "browser actions", chromedp.Steps(steps...))
}

// poll waits until the JavaScript expression is true.
func (b *browser) poll(expr string) {
	b.t.Helper()
	run(b, "wait for "+expr, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second)))
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	return run(b, expr, chromedp.Evaluate[string](expr))
}

// text is the textContent of the first element matching sel ("" when
// there is none).
func (b *browser) text(sel string) string {
	b.t.Helper()
	return b.eval(fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.replace(/\s+/g, " ").trim()`, sel))
}

// expect401s fails the test unless every problem reported so far is
// the browser's log entry for a 401 answer of the daemon's API, forgets
// them and returns how many there were.
func (b *browser) expect401s() int {
	b.t.Helper()
	run(b, "sync", chromedp.Evaluate[chromedp.Void]("0"))
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		if !strings.Contains(p, "status of 401") || !strings.Contains(p, b.base+"api/v1/") {
			b.t.Errorf("browser: %s", p)
		}
	}
	n := len(b.problems)
	b.problems = nil
	return n
}

func (b *browser) reported() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append(append([]string(nil), b.problems...), b.offsite...)
}

// check fails the test on any JavaScript error or off-site request seen
// so far.
func (b *browser) check() {
	b.t.Helper()
	// A round trip through the tab: every event sent before its reply
	// has reached listen.
	run(b, "sync", chromedp.Evaluate[chromedp.Void]("0"))
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("browser: %s", p)
	}
	for _, u := range b.offsite {
		b.t.Errorf("the page requested %s, outside the daemon", u)
	}
}

// screenshot writes a full-page PNG to the artifacts directory
// ($BUNKER_ARTIFACTS_DIR/dashboard, default $TMPDIR/bunker-artifacts/dashboard).
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dir := os.Getenv("BUNKER_ARTIFACTS_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "bunker-artifacts")
	}
	dir = filepath.Join(dir, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, b.t.Name()+"-"+name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot: %s", p)
}
