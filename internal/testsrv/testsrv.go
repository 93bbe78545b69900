// Package testsrv starts the real servers the tests run against (object
// stores, sshd, emulators) on free loopback ports in temporary
// directories, and stops them when the test ends. Only tests import it.
//
// Binaries are found in the tool cache that scripts/tools.sh fills
// ($BUNKER_TOOLS, default <module root>/.cache/tools/<name>-<version>/),
// then on PATH. A missing binary skips the test, unless
// BUNKER_REQUIRE_SERVERS=1 (set by CI), which fails it instead: CI skips
// nothing.
package testsrv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// Missing skips the test (or fails it under BUNKER_REQUIRE_SERVERS=1)
// because something the test needs is not installed.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("BUNKER_REQUIRE_SERVERS") == "1" {
		t.Fatalf("%s (BUNKER_REQUIRE_SERVERS=1; run scripts/tools.sh)", msg)
	}
	t.Skipf("%s; run scripts/tools.sh to install it", msg)
}

// ToolsDir is the tool cache directory.
func ToolsDir() string {
	if d := os.Getenv("BUNKER_TOOLS"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".cache", "tools")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// LookTool returns the path of the executable name: the newest
// <tools>/<name>-*/<rel> (rel defaults to name), then name on PATH.
// It returns "" when there is none.
func LookTool(name, rel string) string {
	if rel == "" {
		rel = name
	}
	if dir := ToolsDir(); dir != "" {
		matches, _ := filepath.Glob(filepath.Join(dir, name+"-*", rel))
		sort.Strings(matches)
		for i := len(matches) - 1; i >= 0; i-- {
			if fi, err := os.Stat(matches[i]); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
				return matches[i]
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

// Tool is LookTool that skips (or fails) the test when the tool is missing.
func Tool(t testing.TB, name, rel string) string {
	t.Helper()
	p := LookTool(name, rel)
	if p == "" {
		Missing(t, "%s is not installed", name)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// below, when non-zero, bounds the port (some servers use port+10000).
func FreePort(t testing.TB, below int) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if below == 0 || port < below {
			return port
		}
	}
	t.Fatalf("no free port below %d", below)
	return 0
}

// Process is a server started by Start.
type Process struct {
	Cmd  *exec.Cmd
	Name string
	log  *syncBuffer
	done chan struct{}
	err  error
}

// Start runs cmd in its own process group, collecting its output, and
// stops it (SIGTERM, then SIGKILL after 5 s) when the test ends. A cmd
// without an environment of its own gets testutil.CleanEnviron(): no
// server inherits a developer's BUNKER_PASSWORD, PGHOST or AWS_PROFILE,
// nor hands it to what it runs (an archive_command, an ssh session).
func Start(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	if cmd.Env == nil {
		cmd.Env = testutil.CleanEnviron()
	}
	p := &Process{Cmd: cmd, Name: name, log: &syncBuffer{}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.log
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.log
	}
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, tail(p.log.String(), 4000))
		}
	})
	return p
}

// Output returns what the process wrote so far.
func (p *Process) Output() string { return p.log.String() }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop ends the process group: SIGTERM, then SIGKILL after 5 s.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	signalGroup(p.Cmd.Process, false)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.Kill()
	}
}

// Kill ends the process group with SIGKILL and waits for it.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	signalGroup(p.Cmd.Process, true)
	<-p.done
}

// WaitTCP waits until addr accepts TCP connections, failing the test
// after timeout or when the process exits first.
func (p *Process) WaitTCP(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	p.WaitFor(t, timeout, func(ctx context.Context) bool {
		c, err := (&net.Dialer{Timeout: 200 * time.Millisecond}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

// WaitFor polls ready every 50 ms until it returns true, failing the test
// after timeout or when the process exits first.
func (p *Process) WaitFor(t testing.TB, timeout time.Duration, ready func(ctx context.Context) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if ready(ctx) {
			return
		}
		if p.Exited() {
			t.Fatalf("%s exited before it was ready (%v):\n%s", p.Name, p.err, tail(p.log.String(), 4000))
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s not ready after %v:\n%s", p.Name, timeout, tail(p.log.String(), 4000))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Clone(b.buf.String())
}
