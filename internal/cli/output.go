package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
)

// printer writes human text or JSON lines, and a progress line on a TTY.
type printer struct {
	a        *App
	mu       sync.Mutex
	progress bool // a progress line may be drawn on stderr
	drawn    bool
	// lastJSONStatus is when the last JSON status line went out: with
	// --json, progress comes once a second.
	lastJSONStatus time.Time
}

// jsonStatusDue reports whether a JSON status line may go out at now,
// and if so counts it as sent.
func (p *printer) jsonStatusDue(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastJSONStatus.IsZero() {
		p.lastJSONStatus = now // the first a second from now
		return false
	}
	if now.Sub(p.lastJSONStatus) < time.Second {
		return false
	}
	p.lastJSONStatus = now
	return true
}

func newPrinter(a *App) *printer {
	return &printer{a: a, progress: !a.g.json && !a.g.quiet && !a.g.noProgress && a.stderrIsTerminal()}
}

// jsonLine prints one JSON object on stdout.
func (p *printer) jsonLine(v any) { p.jsonTo(p.a.Stdout, v) }

// typed is v's JSON object with its message_type set to typ.
func typed(typ string, v any) map[string]any {
	m := map[string]any{}
	if b, err := json.Marshal(v); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	m["message_type"] = typ
	return m
}

// jsonErrLine prints one JSON object on stderr: errors and warnings, so
// that stdout holds only the command's results (docs/JSON.md).
func (p *printer) jsonErrLine(v any) { p.jsonTo(p.a.Stderr, v) }

func (p *printer) jsonTo(w io.Writer, v any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"message_type":"error","error":%q}`, err.Error()))
	}
	p.clearLocked()
	w.Write(append(b, '\n'))
}

// textf prints a line of text on stdout unless --json or --quiet.
func (p *printer) textf(format string, args ...any) {
	if p.a.g.json || p.a.g.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintf(p.a.Stdout, format+"\n", args...)
}

// result prints one result of a command: m as a JSON line with --json,
// else the line of text (unless --quiet).
func (p *printer) result(m map[string]any, format string, args ...any) {
	if p.a.g.json {
		p.jsonLine(m)
		return
	}
	p.textf(format, args...)
}

// item prints one item of a listing: m as a JSON line with --json, else
// the line of text on stdout, even with --quiet (the listing is what the
// command is for).
func (p *printer) item(m map[string]any, format string, args ...any) {
	if p.a.g.json {
		p.jsonLine(m)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintf(p.a.Stdout, format+"\n", args...)
}

// infof prints at -v.
func (p *printer) infof(format string, args ...any) {
	if p.a.g.verbose > 0 {
		p.textf(format, args...)
	}
}

// warnf prints a warning on stderr (as a JSON line with --json).
func (p *printer) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.a.g.json {
		p.jsonErrLine(map[string]any{"message_type": "warning", "message": msg})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintf(p.a.Stderr, "warning: %s\n", msg)
}

func (p *printer) clearLocked() {
	if p.drawn {
		fmt.Fprint(p.a.Stderr, "\r\033[K")
		p.drawn = false
	}
}

// status draws the progress line (TTY only).
func (p *printer) status(line string) {
	if !p.progress {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.a.Stderr, "\r\033[K"+line)
	p.drawn = true
}

func (p *printer) doneStatus() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
}

func formatBytes(n int64) string { return app.FormatBytes(n) }

func formatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h := d / time.Hour
	m := (d % time.Hour) / time.Minute
	s := (d % time.Minute) / time.Second
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

func formatRate(bytes int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return formatBytes(int64(float64(bytes)/d.Seconds())) + "/s"
}

// table prints aligned columns.
func table(w io.Writer, header []string, rows [][]string) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths) && len([]rune(c)) > widths[i] {
				widths[i] = len([]rune(c))
			}
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			if i == len(cells)-1 {
				b.WriteString(c)
			} else {
				b.WriteString(c + strings.Repeat(" ", widths[i]-len([]rune(c))))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(header)
	total := 0
	for _, wd := range widths {
		total += wd + 2
	}
	fmt.Fprintln(w, strings.Repeat("-", total-2))
	for _, r := range rows {
		line(r)
	}
}
