package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/bunkerbackup/bunker/internal/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the current implementation")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testTime = time.Date(2026, 5, 4, 2, 0, 0, 0, time.UTC)

// testEvent is the event of the golden files.
func testEvent() Event {
	return Event{
		Kind:     "failure",
		Severity: "critical",
		Job:      "home",
		Title:    "job home failed",
		Message:  "snapshot of /home: read /home/a/x: input/output error\n<!channel> & <https://evil|click>",
		Time:     time.Date(2026, 5, 4, 4, 0, 0, 0, time.FixedZone("CEST", 2*3600)),
		RunID:    "r-42",
		Fields:   map[string]string{"repository": "nas", "duration": "1m2s"},
	}
}

// syncBuffer is a log destination for concurrent deliveries.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTest returns a Notifier with fast retries (2, 1 ms backoff), a fixed
// clock and host, and its log.
func newTest(t *testing.T, cfg plan.Notify, modify ...func(*Options)) (*Notifier, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	o := Options{
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Retries:  2,
		Backoff:  time.Millisecond,
		Hostname: "backup1",
		Now:      func() time.Time { return testTime },
		Getenv:   func(string) string { return "" },
	}
	for _, f := range modify {
		f(&o)
	}
	return New(cfg, o), logs
}

// request is what a test HTTP server received.
type request struct {
	Path, ContentType string
	Body              []byte
}

// recorder is an httptest server that records requests and answers
// with the status codes of replies in turn (then 200).
type recorder struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []request
	replies []int
}

func newRecorder(t *testing.T, replies ...int) *recorder {
	t.Helper()
	r := &recorder{replies: replies}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, request{req.URL.Path, req.Header.Get("Content-Type"), body})
		code := http.StatusOK
		if len(r.replies) > 0 {
			code, r.replies = r.replies[0], r.replies[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		fmt.Fprintf(w, "reply %d\n", code)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func checkGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	pretty.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("body differs from %s:\n got: %s\nwant: %s", path, pretty.Bytes(), want)
	}
}

func TestWebhookBodies(t *testing.T) {
	for _, tc := range []struct{ format, golden string }{
		{"", "webhook-json.json"},
		{"json", "webhook-json.json"},
		{"slack", "webhook-slack.json"},
	} {
		t.Run("format="+tc.format, func(t *testing.T) {
			srv := newRecorder(t)
			n, _ := newTest(t, plan.Notify{Webhooks: []*plan.Webhook{{URL: srv.URL + "/hook", Format: tc.format}}})
			if err := n.Notify(context.Background(), testEvent()); err != nil {
				t.Fatal(err)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if reqs[0].ContentType != "application/json" || reqs[0].Path != "/hook" {
				t.Errorf("request %+v", reqs[0])
			}
			if bytes.Contains(reqs[0].Body, []byte("\n")) {
				t.Errorf("body is not compact JSON: %s", reqs[0].Body)
			}
			checkGolden(t, tc.golden, reqs[0].Body)
		})
	}
}

func TestWebhookEmptyFields(t *testing.T) {
	n, _ := newTest(t, plan.Notify{})
	b, err := n.jsonBody(Event{Kind: "recovery", Severity: "info", Title: "job home recovered"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"source":"bunker","kind":"recovery","severity":"info","job":"","title":"job home recovered","message":"","time":"0001-01-01T00:00:00Z","run_id":"","host":"backup1","fields":{}}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	// Notify fills a zero time from the clock.
	srv := newRecorder(t)
	n, _ = newTest(t, plan.Notify{Webhooks: []*plan.Webhook{{URL: srv.URL}}})
	if err := n.Notify(context.Background(), Event{Kind: "recovery"}); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests()[0].Body; !bytes.Contains(got, []byte(`"time":"2026-05-04T02:00:00Z"`)) {
		t.Errorf("zero time not filled from the clock: %s", got)
	}
}

func TestSlackEscapesAndColors(t *testing.T) {
	n, _ := newTest(t, plan.Notify{})
	for sev, color := range map[string]string{"critical": "danger", "warning": "warning", "info": "good", "": "good"} {
		b, err := n.slackBody(Event{Severity: sev, Title: "a\r\nb <@U1>", Fields: map[string]string{"x<": "&y"}})
		if err != nil {
			t.Fatal(err)
		}
		var m slackMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.Text != "a b &lt;@U1&gt;" {
			t.Errorf("text %q", m.Text)
		}
		if got := m.Attachments[0].Color; got != color {
			t.Errorf("severity %q: color %q, want %q", sev, got, color)
		}
		last := m.Attachments[0].Fields[len(m.Attachments[0].Fields)-1]
		if last != (slackField{"x&lt;", "&amp;y", true}) {
			t.Errorf("field %+v", last)
		}
	}
}

func TestWebhookEventFilter(t *testing.T) {
	all, rpo, failDrill := newRecorder(t), newRecorder(t), newRecorder(t)
	n, _ := newTest(t, plan.Notify{Webhooks: []*plan.Webhook{
		{URL: all.URL},
		{URL: rpo.URL, Events: []string{"rpo"}},
		{URL: failDrill.URL, Events: []string{"failure", "drill"}},
	}})
	for _, kind := range []string{"failure", "rpo", "drill", "recovery", "321"} {
		if err := n.Notify(context.Background(), Event{Kind: kind}); err != nil {
			t.Fatal(err)
		}
	}
	count := func(r *recorder) int { return len(r.requests()) }
	if count(all) != 5 || count(rpo) != 1 || count(failDrill) != 2 {
		t.Errorf("deliveries: all %d (want 5), rpo %d (want 1), failure+drill %d (want 2)", count(all), count(rpo), count(failDrill))
	}
}

func TestWebhookRetries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replies []int
		hits    int
		ok      bool
	}{
		{"500 then success", []int{500, 503}, 3, true},
		{"429 is retried", []int{429}, 2, true},
		{"408 is retried", []int{408}, 2, true},
		{"500 until given up", []int{500, 500, 500, 500}, 3, false},
		{"400 is not retried", []int{400}, 1, false},
		{"404 is not retried", []int{404}, 1, false},
		{"redirect is not followed", []int{302}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, tc.replies...)
			n, logs := newTest(t, plan.Notify{Webhooks: []*plan.Webhook{{URL: srv.URL + "/x"}}})
			err := n.Notify(context.Background(), testEvent())
			if got := len(srv.requests()); got != tc.hits {
				t.Errorf("%d requests, want %d", got, tc.hits)
			}
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				code := fmt.Sprint(tc.replies[0])
				if !strings.Contains(err.Error(), "webhook 1 (http://127.0.0.1:") || !strings.Contains(err.Error(), "HTTP "+code) {
					t.Errorf("error does not name the webhook and status: %v", err)
				}
				if !strings.Contains(err.Error(), "reply "+code) {
					t.Errorf("error does not quote the reply: %v", err)
				}
				if tc.hits > 1 && !strings.Contains(err.Error(), "attempt 3 of 3") {
					t.Errorf("error does not count attempts: %v", err)
				}
			}
			if tc.hits > 1 && !strings.Contains(logs.String(), "retrying") {
				t.Errorf("retries not logged: %s", logs)
			}
		})
	}
}

func TestNoRetriesOption(t *testing.T) {
	srv := newRecorder(t, 500, 500)
	n, _ := newTest(t, plan.Notify{Webhooks: []*plan.Webhook{{URL: srv.URL}}}, func(o *Options) { o.Retries = -1 })
	if err := n.Notify(context.Background(), testEvent()); err == nil {
		t.Fatal("no error")
	}
	if got := len(srv.requests()); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

// TestNotifyTriesAll: one failing target does not stop the others, and
// every failure is in the joined error.
func TestBadURLNotRetried(t *testing.T) {
	n, logs := newTest(t, plan.Notify{
		Webhooks:     []*plan.Webhook{{URL: "ftp://host/x"}, {URL: "http://host/%zz"}},
		Healthchecks: []*plan.Healthcheck{{Job: "home", URL: "::"}},
	})
	err := errors.Join(n.Notify(context.Background(), testEvent()), n.Ping(context.Background(), "home", "start", ""))
	for _, want := range []string{"webhook 1 (ftp://host/x): the URL is not http(s)", "webhook 2 (<invalid URL>): the URL is not valid", "healthcheck start ping for job home (<invalid URL>): the URL does not parse"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
	if strings.Contains(logs.String(), "retrying") {
		t.Errorf("a bad URL was retried: %s", logs)
	}
}

func TestNotifyTriesAll(t *testing.T) {
	bad, good, bad2 := newRecorder(t, 400), newRecorder(t), newRecorder(t, 401)
	n, _ := newTest(t, plan.Notify{Webhooks: []*plan.Webhook{{URL: bad.URL}, {URL: good.URL}, {URL: bad2.URL, Format: "slack"}}})
	err := n.Notify(context.Background(), testEvent())
	if err == nil {
		t.Fatal("no error")
	}
	if len(good.requests()) != 1 {
		t.Error("the good webhook got nothing")
	}
	msg := err.Error()
	if !strings.Contains(msg, "webhook 1 ") || !strings.Contains(msg, "HTTP 400") || !strings.Contains(msg, "webhook 3 ") || !strings.Contains(msg, "HTTP 401") || strings.Contains(msg, "webhook 2 ") {
		t.Errorf("joined error: %v", err)
	}
}

// hangingServer never answers until the client goes away.
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

func TestWebhookHangingContext(t *testing.T) {
	srv := hangingServer(t)
	n, _ := newTest(t, plan.Notify{Webhooks: []*plan.Webhook{{URL: srv.URL}}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := n.Notify(ctx, testEvent())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
}

func TestWebhookHangingClientTimeout(t *testing.T) {
	srv := hangingServer(t)
	n, _ := newTest(t, plan.Notify{Webhooks: []*plan.Webhook{{URL: srv.URL}}}, func(o *Options) {
		o.HTTP = &http.Client{Timeout: 50 * time.Millisecond}
		o.Retries = 1
	})
	err := n.Notify(context.Background(), testEvent())
	if err == nil || !strings.Contains(err.Error(), "Client.Timeout") || !strings.Contains(err.Error(), "attempt 2 of 2") {
		t.Fatalf("err = %v, want a client timeout after 2 attempts", err)
	}
}

func TestRetryWaitRespectsContext(t *testing.T) {
	srv := newRecorder(t, 500, 500)
	n, _ := newTest(t, plan.Notify{Webhooks: []*plan.Webhook{{URL: srv.URL}}}, func(o *Options) { o.Backoff = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := n.Notify(ctx, testEvent())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("err = %v", err)
	}
}

// TestSecretsStayOut: tokens in a URL's userinfo, path and query appear
// in no error and no log line, whatever the failure.
func TestSecretsStayOut(t *testing.T) {
	const secret = "S3cr3tT0ken"
	srv := newRecorder(t, 500, 500, 500, 400)
	closed := "127.0.0.1:" + fmt.Sprint(freePort(t))
	hang := hangingServer(t)
	for _, tc := range []struct{ name, url string }{
		{"HTTP error", srv.URL},
		{"connection refused", "http://" + closed},
		{"timeout", hang.URL},
		{"bad URL", "http://host:" + secret + "/"},
		{"bad URL escape", "http://host/%zz" + secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := strings.Replace(tc.url, "://", "://user:"+secret+"@", 1) + "/services/T000/B000/" + secret + "?token=" + secret
			n, logs := newTest(t, plan.Notify{
				Webhooks:     []*plan.Webhook{{URL: u}},
				Healthchecks: []*plan.Healthcheck{{Job: "home", URL: u}},
			}, func(o *Options) { o.HTTP = &http.Client{Timeout: 100 * time.Millisecond} })
			err := errors.Join(n.Notify(context.Background(), testEvent()), n.Ping(context.Background(), "home", "fail", "boom"))
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks the secret: %v", err)
			}
			if strings.Contains(logs.String(), secret) {
				t.Errorf("log leaks the secret: %s", logs)
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestPing(t *testing.T) {
	srv := newRecorder(t)
	n, _ := newTest(t, plan.Notify{Healthchecks: []*plan.Healthcheck{
		{Job: "home", URL: srv.URL + "/ping/5bf66975-d4c7"},
		{Job: "db", URL: srv.URL + "/other/"},
	}})
	ctx := context.Background()
	long := strings.Repeat("é", maxPingBody) // 2 bytes a rune: must be cut
	for _, tc := range []struct{ stage, body, path string }{
		{"start", "", "/ping/5bf66975-d4c7/start"},
		{"success", "ok", "/ping/5bf66975-d4c7"},
		{"fail", "exit status 1", "/ping/5bf66975-d4c7/fail"},
		{"fail", long, "/ping/5bf66975-d4c7/fail"},
	} {
		before := len(srv.requests())
		if err := n.Ping(ctx, "home", tc.stage, tc.body); err != nil {
			t.Fatal(err)
		}
		reqs := srv.requests()[before:]
		if len(reqs) != 1 {
			t.Fatalf("stage %s: %d requests", tc.stage, len(reqs))
		}
		r := reqs[0]
		if r.Path != tc.path || !strings.HasPrefix(r.ContentType, "text/plain") {
			t.Errorf("stage %s: POST %s (%s), want %s", tc.stage, r.Path, r.ContentType, tc.path)
		}
		if len(r.Body) > maxPingBody || !utf8.Valid(r.Body) || !strings.HasPrefix(tc.body, string(r.Body)) || len(tc.body) <= maxPingBody && string(r.Body) != tc.body {
			t.Errorf("stage %s: body of %d bytes, want the first bytes of %d", tc.stage, len(r.Body), len(tc.body))
		}
	}
	// A trailing slash does not double.
	if err := n.Ping(ctx, "db", "start", ""); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests()[len(srv.requests())-1].Path; got != "/other/start" {
		t.Errorf("db start ping: %s", got)
	}
	before := len(srv.requests())
	if err := n.Ping(ctx, "no-such-job", "start", ""); err != nil {
		t.Errorf("job without a healthcheck: %v", err)
	}
	if len(srv.requests()) != before {
		t.Error("job without a healthcheck was pinged")
	}
	if err := n.Ping(ctx, "home", "finish", ""); err == nil || !strings.Contains(err.Error(), `"finish"`) {
		t.Errorf("unknown stage: %v", err)
	}
}

func TestPingFailureRetried(t *testing.T) {
	srv := newRecorder(t, 502)
	n, _ := newTest(t, plan.Notify{Healthchecks: []*plan.Healthcheck{{Job: "home", URL: srv.URL + "/p"}}})
	if err := n.Ping(context.Background(), "home", "success", ""); err != nil {
		t.Fatal(err)
	}
	if got := len(srv.requests()); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T0001/B0001/XXXXXXXXXXXXXXXXXXXXXXXX": "https://hooks.slack.com/services/…",
		"https://chat.example.com/hooks/xhq7d1ezqfyu5xyh4gbh6p1ujy":             "https://chat.example.com/hooks/…",
		"https://hc-ping.com/5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278":              "https://hc-ping.com/…",
		"https://user:pw@alerts.example.com:8443/bunker/events?token=abc#frag":  "https://alerts.example.com:8443/bunker/events?…",
		"http://[::1]:8080/":            "http://[::1]:8080/",
		"http://host":                   "http://host",
		"http://host?":                  "http://host?…",
		"http://host/api/v1/alerts":     "http://host/api/…",
		"http://host//x":                "http://host//x",
		"http://host/UPPER":             "http://host/…",
		"http://host/a%2Fsecret0":       "http://host/a/…",
		"HTTP://Host/x":                 "http://Host/x",
		"http://host:pw/x":              "<invalid URL>",
		"http://host/%zz":               "<invalid URL>",
		"mailto:someone@example.com":    "<invalid URL>",
		"/relative/path":                "<invalid URL>",
		"":                              "<invalid URL>",
		"http://host/abcdefghijklmnopq": "http://host/…",
		"http://host/abcdefghijklmnop":  "http://host/abcdefghijklmnop",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// redactedRest is what Redact may write after scheme://host.
var redactedRest = regexp.MustCompile(`^(/[a-z_-]{0,16})*(/…)?(\?…)?$`)

func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"https://hooks.slack.com/services/T0001/B0001/XXXX",
		"https://user:pw@host:8443/a/b?token=abc#frag",
		"http://[fe80::1%25eth0]:80/x",
		"http://host/%e2%82%ac/x",
		"http://a@b@c/d",
		"http://host/a//b/",
		"x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := Redact(raw)
		if got == "<invalid URL>" {
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("Redact(%q) = %q for a URL that does not parse", raw, got)
		}
		prefix := u.Scheme + "://" + u.Host
		if !strings.HasPrefix(got, prefix) {
			t.Fatalf("Redact(%q) = %q, want the prefix %q", raw, got, prefix)
		}
		if rest := strings.TrimPrefix(got, prefix); !redactedRest.MatchString(rest) {
			t.Fatalf("Redact(%q) = %q: %q is more than plain path words", raw, got, rest)
		}
		if strings.Contains(u.Host, "@") {
			t.Fatalf("host %q holds userinfo", u.Host)
		}
	})
}

// FuzzWebhookBodies: any event makes valid JSON in both formats, with
// valid UTF-8 values round-tripping and Slack text free of < and >.
func FuzzWebhookBodies(f *testing.F) {
	f.Add("job home failed", "exit 1\n<!channel>", "home", "k", "v")
	f.Add("a\r\nb", "\xff\xfe", "", "", "")
	f.Add("\u2028x", "&amp;", "j\x00", "<", ">")
	n := New(plan.Notify{}, Options{Hostname: "h"})
	f.Fuzz(func(t *testing.T, title, message, job, key, value string) {
		ev := Event{Kind: "failure", Severity: "warning", Job: job, Title: title, Message: message, Time: testTime, Fields: map[string]string{key: value}}
		b, err := n.jsonBody(ev)
		if err != nil {
			t.Fatal(err)
		}
		var je jsonEvent
		if err := json.Unmarshal(b, &je); err != nil {
			t.Fatalf("json body %q: %v", b, err)
		}
		if strings.ContainsAny(je.Title, "\r\n") || utf8.RuneCountInString(je.Title) > maxTitle {
			t.Fatalf("title %q is not one short line", je.Title)
		}
		if utf8.ValidString(job) && je.Job != job || utf8.ValidString(message) && len(message) <= maxMessage && je.Message != message {
			t.Fatalf("values do not round-trip: %+v", je)
		}
		if len(je.Message) > maxMessage+len(truncated) {
			t.Fatalf("message of %d bytes", len(je.Message))
		}
		b, err = n.slackBody(ev)
		if err != nil {
			t.Fatal(err)
		}
		var sm slackMessage
		if err := json.Unmarshal(b, &sm); err != nil {
			t.Fatalf("slack body %q: %v", b, err)
		}
		if strings.ContainsAny(sm.Text, "<>") {
			t.Fatalf("slack text %q is not escaped", sm.Text)
		}
		if title, _, _ := strings.Cut(sm.Text, "\n"); strings.ContainsRune(title, '\r') {
			t.Fatalf("slack title %q is not one line", title)
		}
		for _, fl := range sm.Attachments[0].Fields {
			if strings.ContainsAny(fl.Title+fl.Value, "<>") {
				t.Fatalf("slack field %+v is not escaped", fl)
			}
		}
	})
}
