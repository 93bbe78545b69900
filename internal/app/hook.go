package app

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// hookBaseVars are what a hook or drill check inherits of bunker's
// environment without asking: what a shell and its tools need to run,
// and nothing that holds a secret. Everything else (BUNKER_PASSWORD,
// API tokens, AWS_*, AZURE_*, GOOGLE_*, PG*…) reaches a hook only when
// the plan names it in the hook's env.
var hookBaseVars = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "TZ",
	"LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY",
	"LC_MESSAGES", "LC_PAPER", "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION",
}

// defaultPath is a hook's PATH when bunker has none (systemd's default).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// HookEnv returns the whole environment of a hook: hookBaseVars from
// bunker's environment, then the plan's env entries (NAME passes
// bunker's NAME through when it is set, NAME=VALUE sets it), then vars,
// the run's documented BUNKER_* variables, which win.
func (a *App) HookEnv(planEnv []string, vars ...string) []string {
	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, k := range hookBaseVars {
		if v := a.getenv(k); v != "" {
			set(k, v)
		}
	}
	if env["PATH"] == "" {
		set("PATH", defaultPath)
	}
	for _, e := range append(planEnv, vars...) {
		if k, v, ok := strings.Cut(e, "="); ok {
			set(k, v)
		} else if v := a.getenv(k); v != "" {
			set(k, v)
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

// RunHook runs a hook command with its timeout (default 5 minutes),
// killing its process group when the time is up. Its environment is
// HookEnv's (the plan's env for the hook, and vars); its output goes to
// log.
func (a *App) RunHook(ctx context.Context, h *plan.Hook, vars []string, log io.Writer) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := a.HookCommand(ctx, h.Command, a.HookEnv(h.Env, vars...))
	w := LockedWriter(log)
	cmd.Stdout, cmd.Stderr = w, w
	fmt.Fprintf(log, "$ %s\n", h.Command)
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%q killed after its timeout of %s", h.Command, timeout)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", h.Command, err)
	}
	return nil
}

// HookCommand is a shell command of a hook or a drill check: run by
// /bin/sh with env, in a process group of its own that the context's end
// kills whole (hooks start children).
func (a *App) HookCommand(ctx context.Context, command string, env []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = env
	hookProcessGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// PlanSecret resolves a plan's secret reference (env:, file:, command:
// or a literal); a command runs by /bin/sh with an environment that holds
// no other secret.
func (a *App) PlanSecret(ctx context.Context, ref string) (string, error) {
	return plan.ResolveSecret(ref, a.getenv, func(c string) (string, error) {
		out, err := RunSecretCommand(ctx, c)
		if err != nil {
			return "", fmt.Errorf("secret command failed: %w", err)
		}
		return out, nil
	})
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// LockedWriter makes w safe for concurrent writers (a run's log is
// written by hooks, tools and the use cases at once).
func LockedWriter(w io.Writer) io.Writer {
	if _, ok := w.(*syncWriter); ok {
		return w
	}
	return &syncWriter{w: w}
}
