package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// Event is something an operator should hear about.
type Event struct {
	Kind     string            // "failure" | "rpo" | "rto" | "drill" | "recovery" | "321"
	Severity string            // "critical" | "warning" | "info" (recovery = info)
	Job      string            // job or drill or dataset name
	Title    string            // one line: "job home failed", "RPO violated for shop-db (last success 27h ago, objective 26h)"
	Message  string            // details (error text; never secrets)
	Time     time.Time         // zero: now
	RunID    string            // "" when the event belongs to no run
	Fields   map[string]string // extra facts shown in bodies
}

// Options are a Notifier's collaborators. The zero value works.
type Options struct {
	// HTTP sends webhooks and pings. Default: a 10 s timeout, redirects
	// not followed.
	HTTP *http.Client
	// Getenv resolves env: secret references. Default: none is set.
	Getenv func(string) string
	// RunSecretCommand resolves command: secret references. Default:
	// command references fail.
	RunSecretCommand func(ctx context.Context, cmd string) (string, error)
	// Logger gets retried attempts (warn) and deliveries (debug).
	// Default: discard.
	Logger *slog.Logger
	// Retries per delivery after the first attempt. 0: 3; negative: none.
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one. 0: 1 s.
	Backoff time.Duration
	// Hostname is the "host" of bodies and the Message-ID domain.
	// Default: os.Hostname.
	Hostname string
	// Now is the clock for event times and the Date header. Default:
	// time.Now.
	Now func() time.Time
}

// Defaults of Options.
const (
	DefaultHTTPTimeout = 10 * time.Second
	DefaultRetries     = 3
	DefaultBackoff     = time.Second
)

// Limits of what is sent.
const (
	maxMessage  = 16 << 10 // bytes of Event.Message in a body
	maxPingBody = 10000    // healthchecks.io's default ping body limit
	maxTitle    = 200      // runes of a title (a Subject must stay short)
	maxReply    = 200      // bytes of an HTTP error reply quoted in errors
)

// Notifier sends a plan's notifications. It is safe for concurrent use.
type Notifier struct {
	cfg      plan.Notify
	http     *http.Client
	getenv   func(string) string
	run      func(ctx context.Context, cmd string) (string, error)
	log      *slog.Logger
	retries  int
	backoff  time.Duration
	hostname string
	now      func() time.Time

	tlsConfig *tls.Config // tests: the roots that verify the SMTP server
}

// New returns a Notifier for cfg (checked by plan.Parse).
func New(cfg plan.Notify, o Options) *Notifier {
	n := &Notifier{
		cfg: cfg, http: o.HTTP, getenv: o.Getenv, run: o.RunSecretCommand, log: o.Logger,
		retries: o.Retries, backoff: o.Backoff, hostname: o.Hostname, now: o.Now,
	}
	if n.http == nil {
		n.http = &http.Client{
			Timeout: DefaultHTTPTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if n.getenv == nil {
		n.getenv = func(string) string { return "" }
	}
	if n.run == nil {
		n.run = func(context.Context, string) (string, error) {
			return "", errors.New("command: secret references are not enabled")
		}
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case n.retries == 0:
		n.retries = DefaultRetries
	case n.retries < 0:
		n.retries = 0
	}
	if n.backoff <= 0 {
		n.backoff = DefaultBackoff
	}
	if n.hostname == "" {
		n.hostname, _ = os.Hostname()
	}
	if n.now == nil {
		n.now = time.Now
	}
	return n
}

// Notify delivers ev to every webhook whose Events list is empty or
// contains ev.Kind, and by e-mail. It tries all of them (in parallel)
// and returns errors.Join of the deliveries that failed after retries.
func (n *Notifier) Notify(ctx context.Context, ev Event) error {
	if ev.Time.IsZero() {
		ev.Time = n.now()
	}
	var tasks []func() error
	for i, w := range n.cfg.Webhooks {
		if len(w.Events) > 0 && !slices.Contains(w.Events, ev.Kind) {
			continue
		}
		tasks = append(tasks, func() error { return n.sendWebhook(ctx, i, w, ev) })
	}
	if e := n.cfg.Email; e != nil {
		tasks = append(tasks, func() error { return n.sendEmail(ctx, e, ev) })
	}
	for i, sv := range n.cfg.Services {
		if len(sv.Events) > 0 && !slices.Contains(sv.Events, ev.Kind) {
			continue
		}
		tasks = append(tasks, func() error { return n.sendService(ctx, i, sv, ev) })
	}
	return runAll(tasks)
}

// Ping is the healthchecks.io protocol for a job: stage "start" →
// URL/start, "success" → URL, "fail" → URL/fail, each a POST with body
// (e.g. the error) as text. Jobs without a healthcheck are a no-op.
func (n *Notifier) Ping(ctx context.Context, job, stage, body string) error {
	var suffix string
	switch stage {
	case "start", "fail":
		suffix = stage
	case "success":
	default:
		return fmt.Errorf("healthcheck ping for job %s: stage %q is not start, success or fail", job, stage)
	}
	var tasks []func() error
	for _, h := range n.cfg.Healthchecks {
		if h.Job != job {
			continue
		}
		tasks = append(tasks, func() error {
			what := fmt.Sprintf("healthcheck %s ping for job %s (%s)", stage, job, Redact(h.URL))
			u, err := url.Parse(h.URL)
			if err != nil {
				return fmt.Errorf("%s: the URL does not parse", what)
			}
			if suffix != "" {
				u = u.JoinPath(suffix)
			}
			b := []byte(truncate(body, maxPingBody, ""))
			return n.deliver(ctx, what, func(ctx context.Context) error {
				return n.post(ctx, u.String(), "text/plain; charset=utf-8", b)
			})
		})
	}
	return runAll(tasks)
}

// runAll runs tasks concurrently and joins their errors in task order.
func runAll(tasks []func() error) error {
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, f := range tasks {
		wg.Go(func() { errs[i] = f() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// permanentError is a failure retrying cannot fix.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return &permanentError{err} }

// deliver runs attempt until it succeeds, fails permanently, the retries
// are used up or ctx ends. what names the target in errors and logs and
// must hold no secret.
func (n *Notifier) deliver(ctx context.Context, what string, attempt func(context.Context) error) error {
	attempts := n.retries + 1
	delay := n.backoff
	for i := 1; ; i++ {
		err := attempt(ctx)
		if err == nil {
			n.log.Debug("notification sent", "target", what, "attempt", i)
			return nil
		}
		if p := (*permanentError)(nil); errors.As(err, &p) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ctx.Err() != nil || i == attempts {
			if i > 1 {
				return fmt.Errorf("%s: %w (attempt %d of %d)", what, err, i, attempts)
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		n.log.Warn("notification failed, retrying", "target", what, "attempt", i, "attempts", attempts, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s: %w (attempt %d of %d; no retry: %w)", what, err, i, attempts, context.Cause(ctx))
		case <-t.C:
		}
		delay *= 2
	}
}

// sendWebhook posts ev to webhook number i (0-based) in its format.
func (n *Notifier) sendWebhook(ctx context.Context, i int, w *plan.Webhook, ev Event) error {
	what := fmt.Sprintf("webhook %d (%s)", i+1, Redact(w.URL))
	var body []byte
	var err error
	switch w.Format {
	case "", "json":
		body, err = n.jsonBody(ev)
	case "slack":
		body, err = n.slackBody(ev)
	default:
		err = fmt.Errorf("format %q is not json or slack", w.Format)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return n.deliver(ctx, what, func(ctx context.Context) error {
		return n.post(ctx, w.URL, "application/json", body)
	})
}

// post sends one POST; a non-2xx reply is an error, permanent unless it
// is 408, 429 or 5xx. Errors do not show the URL: the caller names the
// target (redacted).
func (n *Notifier) post(ctx context.Context, rawURL, contentType string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		// The error quotes the URL: do not wrap it.
		return permanent(errors.New("the URL is not valid"))
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return permanent(errors.New("the URL is not http(s)"))
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "bunker-notify")
	resp, err := n.http.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL, secrets included: keep only
		// its cause.
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err = fmt.Errorf("HTTP %s%s", resp.Status, quoteReply(reply))
	switch {
	case code >= 300 && code < 400:
		return permanent(fmt.Errorf("%w (redirects are not followed: use the final URL)", err))
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return err
	}
	return permanent(err)
}

// quoteReply renders the start of an HTTP error reply for an error
// message: one line, printable, short.
func quoteReply(b []byte) string {
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if s == "" {
		return ""
	}
	return ": " + truncate(s, maxReply, "…")
}

// jsonEvent is the documented "json" webhook body (see the package doc).
type jsonEvent struct {
	Source   string            `json:"source"`
	Kind     string            `json:"kind"`
	Severity string            `json:"severity"`
	Job      string            `json:"job"`
	Title    string            `json:"title"`
	Message  string            `json:"message"`
	Time     string            `json:"time"`
	RunID    string            `json:"run_id"`
	Host     string            `json:"host"`
	Fields   map[string]string `json:"fields"`
}

func (n *Notifier) jsonBody(ev Event) ([]byte, error) {
	fields := ev.Fields
	if fields == nil {
		fields = map[string]string{}
	}
	return marshal(jsonEvent{
		Source:   "bunker",
		Kind:     ev.Kind,
		Severity: ev.Severity,
		Job:      ev.Job,
		Title:    oneLine(ev.Title),
		Message:  truncate(ev.Message, maxMessage, truncated),
		Time:     ev.Time.UTC().Format(time.RFC3339),
		RunID:    ev.RunID,
		Host:     n.hostname,
		Fields:   fields,
	})
}

type slackMessage struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Color  string       `json:"color"`
	Fields []slackField `json:"fields"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

func (n *Notifier) slackBody(ev Event) ([]byte, error) {
	text := slackEscape(oneLine(ev.Title))
	if ev.Message != "" {
		text += "\n" + slackEscape(truncate(ev.Message, maxMessage, truncated))
	}
	var fields []slackField
	add := func(title, value string) {
		fields = append(fields, slackField{Title: slackEscape(title), Value: slackEscape(value), Short: true})
	}
	for _, f := range factList(ev, n.hostname) {
		add(f[0], f[1])
	}
	return marshal(slackMessage{
		Text:        text,
		Attachments: []slackAttachment{{Color: slackColor(ev.Severity), Fields: fields}},
	})
}

// factList is the event's facts as name/value pairs, in the order the
// Slack fields and the e-mail body show them.
func factList(ev Event, host string) [][2]string {
	facts := [][2]string{{"Job", ev.Job}, {"Kind", ev.Kind}, {"Severity", ev.Severity}, {"Host", host}}
	if ev.RunID != "" {
		facts = append(facts, [2]string{"Run", ev.RunID})
	}
	facts = append(facts, [2]string{"Time", ev.Time.UTC().Format(time.RFC3339)})
	keys := make([]string, 0, len(ev.Fields))
	for k := range ev.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		facts = append(facts, [2]string{k, ev.Fields[k]})
	}
	return facts
}

func slackColor(severity string) string {
	switch severity {
	case "critical":
		return "danger"
	case "warning":
		return "warning"
	}
	return "good"
}

// slackEscape escapes the three characters Slack's message format
// interprets (links, mentions such as <!channel>).
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace

// marshal is json.Marshal without HTML escaping (bodies are not HTML).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

const truncated = "\n… (truncated)"

// truncate cuts s to at most max bytes (marker included) on a rune
// boundary, ending it with marker when it was cut.
func truncate(s string, max int, marker string) string {
	if len(s) <= max {
		return s
	}
	cut := max - len(marker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + marker
}

// oneLine flattens a title: control characters (CR, LF, tabs…) become
// spaces, runs of spaces one, and it is cut to maxTitle runes.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > maxTitle {
		r := []rune(s)
		s = string(r[:maxTitle-1]) + "…"
	}
	return s
}
