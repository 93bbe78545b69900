package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Command is an external program a source runs: a dump tool whose output
// is streamed into the repository, or a restore tool fed from it.
type Command struct {
	Path  string   // program name or path
	Args  []string // without the program
	Env   []string // added to ChildEnv's: this process's environment without bunker's secrets
	Dir   string
	Stdin io.Reader
	// Stderr, when set, also receives the tool's standard error as it
	// comes (its last lines are always kept for the error message).
	Stderr io.Writer
}

// Name is the program's base name, for messages.
func (c *Command) Name() string { return filepath.Base(c.Path) }

func (c *Command) cmd(ctx context.Context) (*exec.Cmd, *tail) {
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = ChildEnv(c.Env...)
	cmd.Dir = c.Dir
	cmd.Stdin = c.Stdin
	t := &tail{max: 4096}
	cmd.Stderr = t
	if c.Stderr != nil {
		cmd.Stderr = io.MultiWriter(t, c.Stderr)
	}
	ownGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	return cmd, t
}

// ToolError is a failed external program, with the end of its standard
// error.
type ToolError struct {
	Name   string
	Err    error  // from exec: exit status or start failure
	Stderr string // last lines
}

func (e *ToolError) Error() string {
	var nf *exec.Error
	if errors.As(e.Err, &nf) && errors.Is(nf.Err, exec.ErrNotFound) {
		return fmt.Sprintf("%s not found: install it or give its directory (%v)", e.Name, e.Err)
	}
	if e.Stderr != "" {
		return fmt.Sprintf("%s failed (%v): %s", e.Name, e.Err, e.Stderr)
	}
	return fmt.Sprintf("%s failed: %v", e.Name, e.Err)
}

func (e *ToolError) Unwrap() error { return e.Err }

// Output runs the command and hands its standard output to consume. The
// command fails when it exits non-zero, even if consume read everything:
// a dump tool that dies half-way may have written a well-formed prefix.
// When consume fails, the program is killed and consume's error returned
// unless the program itself reported a failure first.
func (c *Command) Output(ctx context.Context, consume func(io.Reader) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd, t := c.cmd(ctx)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return &ToolError{Name: c.Name(), Err: err}
	}
	ra := newReadAhead(out)
	cerr := consume(ra)
	if cerr != nil {
		// Read nothing more: kill it.
		ra.stopReading()
		cancel()
	} else {
		// The consumer stopped at EOF; anything left is unread output.
		_, _ = io.Copy(io.Discard, ra)
	}
	// Wait may close the pipe only once nothing reads it any more.
	ra.wait()
	werr := cmd.Wait()
	if werr != nil && (cerr == nil || ctx.Err() == nil || !isKilled(werr)) {
		return &ToolError{Name: c.Name(), Err: werr, Stderr: t.String()}
	}
	return cerr
}

// Run runs the command to completion.
func (c *Command) Run(ctx context.Context) error {
	cmd, t := c.cmd(ctx)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &ToolError{Name: c.Name(), Err: err, Stderr: t.String()}
	}
	return nil
}

// CombinedOutput runs the command and returns its standard output.
func (c *Command) CombinedOutput(ctx context.Context) ([]byte, error) {
	var b []byte
	err := c.Output(ctx, func(r io.Reader) error {
		var err error
		b, err = io.ReadAll(r)
		return err
	})
	return b, err
}

func isKilled(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && killedBySignal(ee)
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if len(t.buf) >= t.max {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = "…" + s[i+1:]
		}
	}
	return strings.ReplaceAll(s, "\n", "; ")
}

// LookTool is the one way sources find a program. It looks in dir when
// given (a --tool-dir or --pg-bin flag: only there), else in the first of
// searchDirs that has it, else on PATH. A search directory may be a glob
// pattern such as "/usr/lib/postgresql/*/bin": its matches are tried
// newest version first (the numbers in their paths compared as numbers,
// so 16 comes before 9). Only an executable file is found (exec.LookPath
// decides, with its platform's rules).
func LookTool(name, dir string, searchDirs ...string) (string, error) {
	if p, ok, err := lookIn(name, dir, searchDirs); ok || err != nil {
		return p, err
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found on PATH: install it or give its directory", name)
	}
	return p, nil
}

// LookToolOnPath is LookTool for a program that must come from the
// caller's PATH, path (a PATH value of the environment the program will
// run in, which may not be this process's), instead of this process's.
func LookToolOnPath(name, dir, path string) (string, error) {
	if p, ok, err := lookIn(name, dir, filepath.SplitList(path)); ok || err != nil {
		return p, err
	}
	return "", fmt.Errorf("%s not found on PATH: install it or give its directory", name)
}

// lookIn finds name in dir when given (an error when it is not there),
// else in the first of searchDirs that has it (ok false when none has).
func lookIn(name, dir string, searchDirs []string) (p string, ok bool, err error) {
	if dir != "" {
		p, err := exec.LookPath(filepath.Join(dir, name))
		if err != nil {
			return "", false, fmt.Errorf("%s not found in %s", name, dir)
		}
		return p, true, nil
	}
	for _, pat := range searchDirs {
		if pat == "" {
			continue
		}
		for _, d := range expandDir(pat) {
			if p, err := exec.LookPath(filepath.Join(d, name)); err == nil {
				return p, true, nil
			}
		}
	}
	return "", false, nil
}

// expandDir returns the directories a search directory names: itself, or
// a glob pattern's matches, newest version first.
func expandDir(pat string) []string {
	if !strings.ContainsAny(pat, "*?[") {
		return []string{pat}
	}
	ds, _ := filepath.Glob(pat)
	slices.SortStableFunc(ds, func(a, b string) int { return compareVersions(b, a) })
	return ds
}

// compareVersions compares two paths by their runs of digits as numbers
// and the rest as text ("postgresql/9/bin" < "postgresql/16/bin").
func compareVersions(a, b string) int {
	for a != "" && b != "" {
		na, ra := leadingRun(a)
		nb, rb := leadingRun(b)
		if c := compareRuns(na, nb); c != 0 {
			return c
		}
		a, b = ra, rb
	}
	return cmp.Compare(len(a), len(b))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// leadingRun splits s after its first run of digits or of other bytes.
func leadingRun(s string) (run, rest string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}

func compareRuns(a, b string) int {
	if isDigit(a[0]) && isDigit(b[0]) {
		a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}
