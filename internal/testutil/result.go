package testutil

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Result is the outcome of one bunker command: run in-process by
// internal/cli, as a process by internal/e2e.
type Result struct {
	Code           int
	Stdout, Stderr string
	Args           []string
	Dur            time.Duration // how long it ran, when measured
}

func (r Result) String() string {
	after := ""
	if r.Dur > 0 {
		after = " after " + r.Dur.Round(time.Millisecond).String()
	}
	args := make([]string, len(r.Args))
	for i, a := range r.Args {
		args[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf("bunker %s\nexit %d%s\n--- stdout:\n%s\n--- stderr:\n%s",
		strings.Join(args, " "), r.Code, after, Clip(r.Stdout, 6000), Clip(r.Stderr, 6000))
}

// JSONLines decodes the JSON-object lines of the command's output.
//
// With --json, results are on stdout and errors and warnings on stderr
// (docs/JSON.md): both are read, stdout first.
func (r Result) JSONLines() []map[string]any {
	return append(JSONLines(r.Stdout), JSONLines(r.Stderr)...)
}

// Message returns the last JSON line with the given message_type, failing
// the test when there is none.
func (r Result) Message(t testing.TB, typ string) map[string]any {
	t.Helper()
	m, ok := LastMessage(r.JSONLines(), typ)
	if !ok {
		t.Fatalf("no JSON line with message_type %q in output of\n%s", typ, r)
	}
	return m
}

// Expect fails the test unless r exited with code, and returns r.
func Expect(t testing.TB, r Result, code int) Result {
	t.Helper()
	if r.Code != code {
		t.Fatalf("want exit code %d, got:\n%s", code, r)
	}
	return r
}
