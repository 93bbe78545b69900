package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/daemon"
)

// runService runs a command that runs until interrupted (operator,
// mount…) in-process with --json, waits until ready says it is up (or
// 60 s pass), interrupts it and checks what it printed against
// docs/JSON.md, as runApp does for the others.
func runService(t *testing.T, getenv func(string) string, args []string, ready func(stdout, stderr string) bool) result {
	t.Helper()
	args = append([]string{"--json"}, args...)
	var stdout, stderr serveOutput
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: getenv}
	go func() { done <- app.Run(ctx, args) }()
	deadline := time.Now().Add(60 * time.Second)
	code := -1
wait:
	for !ready(stdout.String(), stderr.String()) && time.Now().Before(deadline) {
		select {
		case code = <-done:
			break wait
		case <-time.After(50 * time.Millisecond):
		}
	}
	if code < 0 {
		cancel()
		select {
		case code = <-done:
		case <-time.After(60 * time.Second):
			t.Fatalf("bunker %s did not stop when interrupted:\n%s%s", strings.Join(args, " "), stdout.String(), stderr.String())
		}
	}
	r := result{Code: code, Stdout: stdout.String(), Stderr: stderr.String(), Args: args}
	checkJSONRun(t, args, r)
	return r
}

// TestJSONSchemaDaemon: the daemon with --json logs JSON lines of
// message_type "log" on stderr, scheduled runs included, as
// docs/JSON.md lists them.
func TestJSONSchemaDaemon(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
`)
	de := startDaemon(t, pe, daemon.NewFakeClock(time.Now().Truncate(time.Hour)), "--json")
	de.advance(time.Hour)
	de.waitRuns("home", 1)
	if code := de.stop(); code != 0 {
		t.Fatalf("daemon exited with %d:\n%s", code, de.stderr.String())
	}
	args := []string{"--json", "daemon"}
	r := result{Stderr: de.stderr.String(), Args: args}
	checkJSONRun(t, args, r)
	if !strings.Contains(r.Stderr, `"message_type":"log"`) {
		t.Errorf("the daemon logged no JSON line:\n%s", r.Stderr)
	}
}
