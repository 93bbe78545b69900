package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/redact"
	"github.com/bunkerbackup/bunker/internal/state"
)

// Every run lands in one history, the daemon's: a run made by hand
// (bunker run, bunker drill) is recorded there too, so that status and
// the dashboard see it. With no daemon running the CLI writes the state
// database itself; while a daemon holds it, the run goes through the
// daemon's API (POST /api/v1/runs, with the run token).

// recordRun adds the finished manual run r to the plan's history, and
// warns (never fails the command) when it cannot.
func (a *App) recordRun(ctx context.Context, p *plan.Plan, r *state.Run) {
	r.Trigger = state.TriggerManual
	if p.Daemon.StateDir == "" && a.Getenv("XDG_STATE_HOME") == "" && a.Getenv("HOME") == "" {
		return // no state directory this environment names: no history to join
	}
	path := filepath.Join(a.stateDir(p, ""), "state.db")
	store, err := state.Open(path, state.Options{LockTimeout: 300 * time.Millisecond})
	switch {
	case err == nil:
		err = store.Record(r)
		if cerr := store.Close(); err == nil {
			err = cerr
		}
	case errors.Is(err, state.ErrInUse):
		err = a.postRun(ctx, p, r)
	}
	if err != nil {
		a.out.warnf("run history: the %s %s was not recorded: %v", r.Kind, r.Job, err)
	}
}

// postRun sends r to the running daemon of p.
func (a *App) postRun(ctx context.Context, p *plan.Plan, r *state.Run) error {
	addr := p.Daemon.Listen
	if addr == "" {
		return errors.New("a daemon holds the state database and the plan has no daemon.listen to reach it")
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	if p.Daemon.APIToken == "" {
		return errors.New("a daemon holds the state database and the plan has no daemon.api_token to record runs with")
	}
	tok, err := a.planSecret(ctx, p.Daemon.APIToken)
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

// runLog is the log of a manual run: what -v shows (if anything) and a
// tail kept for the history, with the plan's secrets masked in both.
type runLog struct {
	w    io.Writer // the tee, redacted
	rw   *redact.Writer
	tail *tailBuffer
}

// newRunLog returns the log of a run: show, when not nil, also sees it.
func (a *App) newRunLog(ctx context.Context, p *plan.Plan, show io.Writer) *runLog {
	tail := &tailBuffer{max: state.MaxLog}
	var w io.Writer = tail
	if show != nil {
		w = io.MultiWriter(tail, show)
	}
	rw := redact.NewWriter(w, redact.New(a.planSecrets(ctx, p)...))
	return &runLog{w: rw, rw: rw, tail: tail}
}

// String flushes the log and returns its tail.
func (l *runLog) String() string {
	l.rw.Flush()
	return l.tail.String()
}

func (l *runLog) Write(b []byte) (int, error) { return l.w.Write(b) }

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
