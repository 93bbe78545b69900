package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/monitor"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/redact"
	"github.com/bunkerbackup/bunker/internal/state"
)

// Every run lands in one history, the daemon's: a run made by hand
// (bunker run, bunker drill) is recorded there too, so that status and
// the dashboard see it. With no daemon running the front end writes the
// state database itself; while a daemon holds it, the run goes through
// the daemon's API (POST /api/v1/runs, with the run token).

// HistoryClient records runs made by hand in the daemon's history and
// reads that history, from outside the daemon.
type HistoryClient struct {
	// Getenv is the process environment (the state directory's default).
	Getenv func(string) string
	// Secret resolves the plan's secret references (the API tokens).
	Secret func(ctx context.Context, ref string) (string, error)
}

// StateDir is the daemon's state directory: flag, else the plan's
// daemon.state_dir, else $XDG_STATE_HOME/bunker, else
// ~/.local/state/bunker.
func StateDir(p *plan.Plan, flag string, getenv func(string) string) string {
	switch {
	case flag != "":
		return flag
	case p.Daemon.StateDir != "":
		return p.Daemon.StateDir
	case getenv("XDG_STATE_HOME") != "":
		return filepath.Join(getenv("XDG_STATE_HOME"), "bunker")
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".local", "state", "bunker")
}

// Record adds the finished manual run r to the plan's history. Without
// a state directory this environment names, there is no history to join.
func (h HistoryClient) Record(ctx context.Context, p *plan.Plan, r *state.Run) error {
	r.Trigger = state.TriggerManual
	if p.Daemon.StateDir == "" && h.Getenv("XDG_STATE_HOME") == "" && h.Getenv("HOME") == "" {
		return nil
	}
	path := filepath.Join(StateDir(p, "", h.Getenv), "state.db")
	store, err := state.Open(path, state.Options{LockTimeout: 300 * time.Millisecond})
	switch {
	case err == nil:
		err = store.Record(r)
		if cerr := store.Close(); err == nil {
			err = cerr
		}
	case errors.Is(err, state.ErrInUse):
		err = h.post(ctx, p, r)
	}
	return err
}

// daemonAddr is the address the CLI reaches p's daemon at, "" for none.
func daemonAddr(p *plan.Plan) string {
	addr := p.Daemon.Listen
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	return addr
}

// post sends r to the running daemon of p.
func (h HistoryClient) post(ctx context.Context, p *plan.Plan, r *state.Run) error {
	addr := daemonAddr(p)
	if addr == "" {
		return errors.New("a daemon holds the state database and the plan has no daemon.listen to reach it")
	}
	if p.Daemon.APIToken == "" {
		return errors.New("a daemon holds the state database and the plan has no daemon.api_token to record runs with")
	}
	tok, err := h.Secret(ctx, p.Daemon.APIToken)
	if err != nil {
		return fmt.Errorf("daemon.api_token: %w", err)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/v1/runs", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("daemon at %s: %w", addr, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusCreated {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&e)
		return fmt.Errorf("daemon at %s: %s: %s", addr, resp.Status, e.Error)
	}
	return nil
}

// History is what the daemon's run history says: each drill's last
// finished run and each job's last successful backup.
type History struct {
	Drills map[string]monitor.DrillRun
	Jobs   map[string]monitor.SnapshotRef
	Known  bool // false when neither the API nor the state could be read
}

// Read reads the run history from the running daemon's API when the plan
// has daemon.listen, else from its state database (in stateDir, else
// StateDir's default) when no daemon holds it. Its error, when the
// database cannot be opened, comes with what is known (nothing).
func (h HistoryClient) Read(ctx context.Context, p *plan.Plan, stateDir string) (History, error) {
	out := History{Drills: map[string]monitor.DrillRun{}, Jobs: map[string]monitor.SnapshotRef{}}
	if addr := daemonAddr(p); addr != "" && h.readAPI(ctx, p, addr, &out) {
		return out, nil
	}
	path := filepath.Join(StateDir(p, stateDir, h.Getenv), "state.db")
	if _, err := os.Stat(path); err != nil {
		return out, nil
	}
	store, err := state.Open(path, state.Options{LockTimeout: 500 * time.Millisecond})
	if err != nil {
		return out, err
	}
	defer store.Close()
	out.Drills = LastDrillRuns(store, p)
	for _, j := range p.Jobs {
		if r, err := store.LastSuccess(j.Name, state.KindBackup); err == nil && r != nil {
			out.Jobs[j.Name] = monitor.SnapshotRef{ID: r.Snapshot, Time: r.Started}
		}
	}
	out.Known = true
	return out, nil
}

// readAPI reads the history from the daemon's status at addr, and
// reports whether it could.
func (h HistoryClient) readAPI(ctx context.Context, p *plan.Plan, addr string, out *History) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/api/v1/status", nil)
	// A daemon with a token answers only with it: the read token when
	// the plan has one, else the run token. One this process cannot
	// resolve is left out; the state database stands in.
	for _, ref := range []string{p.Daemon.APIReadToken, p.Daemon.APIToken} {
		if ref == "" {
			continue
		}
		if tok, err := h.Secret(ctx, ref); err == nil && tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		break
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st APIStatus
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return false
	}
	for _, d := range st.Drills {
		if r := d.LastRun; r != nil && r.Result != state.ResultRunning {
			out.Drills[d.Name] = monitor.DrillRun{Result: r.Result, Time: r.Started, RestoreSeconds: r.RestoreSeconds, Error: r.Error}
		} else if r := d.LastSuccess; r != nil {
			out.Drills[d.Name] = monitor.DrillRun{Result: r.Result, Time: r.Started, RestoreSeconds: r.RestoreSeconds}
		}
	}
	for _, j := range st.Jobs {
		if r := j.LastSuccess; r != nil {
			out.Jobs[j.Name] = monitor.SnapshotRef{ID: r.Snapshot, Time: r.Started}
		}
	}
	out.Known = true
	return true
}

// RunLog is the log of a manual run: what -v shows (if anything) and a
// tail kept for the history, with the plan's secrets masked in both.
type RunLog struct {
	w    io.Writer // the tee, redacted
	rw   *redact.Writer
	tail *tailBuffer
}

// NewRunLog returns the log of a run that masks secrets: show, when not
// nil, also sees it.
func NewRunLog(show io.Writer, secrets []string) *RunLog {
	tail := &tailBuffer{max: state.MaxLog}
	var w io.Writer = tail
	if show != nil {
		w = io.MultiWriter(tail, show)
	}
	rw := redact.NewWriter(w, redact.New(secrets...))
	return &RunLog{w: rw, rw: rw, tail: tail}
}

// String flushes the log and returns its tail.
func (l *RunLog) String() string {
	l.rw.Flush()
	return l.tail.String()
}

func (l *RunLog) Write(b []byte) (int, error) { return l.w.Write(b) }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
