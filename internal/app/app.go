package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage/location"
)

// App is what the use cases need of the process that runs them. The zero
// value works: no environment, default storage options, no events.
type App struct {
	// Getenv is the process environment (HOME, XDG directories, tools'
	// settings). nil means an empty one.
	Getenv func(string) string
	// Storage is how repositories are reached.
	Storage StorageOptions
	// Log receives the engine's and the backends' diagnostics (retries,
	// slow operations); nil discards them.
	Log *slog.Logger
	// Events receives what a use case says while it works; nil
	// discards it.
	Events Events
	// Program names the writer in the snapshots it saves ("bunker 1.2.0").
	Program string
	// KDF is the key derivation of new keys (zero: crypto.DefaultKDF).
	KDF crypto.KDFParams
	// MemoryBudget lets a use case set the process's soft memory limit
	// to the work (the real program only: tests share one runtime).
	MemoryBudget bool

	mu      sync.Mutex
	closers []io.Closer
}

// StorageOptions is how repositories are reached: the storage backends'
// environment and policy, bandwidth, retries, the metadata cache.
type StorageOptions struct {
	// Getenv, when set, is all the environment storage backends see
	// (credentials, endpoints, key files) instead of App.Getenv: the
	// operator's runs give them a tenant's allowed variables only.
	Getenv func(string) string
	// Policy, when set, limits what backends may reach (schemes, hosts,
	// the process's own identity).
	Policy *location.Policy
	// UploadBytes and DownloadBytes limit transfers per second (0: none).
	UploadBytes, DownloadBytes int64
	// Connections bounds the operations on a remote store at once (0:
	// the engine's own bounds only).
	Connections int
	// CacheDir holds the metadata caches of remote repositories; ""
	// gives each use case a temporary one, removed when it ends.
	CacheDir string
	// RetryAttempts is how often a failing remote operation is tried
	// (0 or 1: once).
	RetryAttempts int
	// AsOf, when set, reads repositories as they were then (versioned
	// object stores only; read-only).
	AsOf time.Time
	// KeyHint names the key to try first when opening a repository.
	KeyHint string
}

// Events receives what a use case says while it works. Implementations
// must be safe for concurrent use.
type Events interface {
	// Warn is something the user should see: an unreadable file that
	// was skipped, a damaged object that was worked around.
	Warn(msg string)
	// Info is a note shown when the user asks for more (-v): the parent
	// snapshot chosen, packs adopted from an interrupted backup.
	Info(msg string)
	// Progress reports how far a long use case has come. It is called
	// about every ProgressInterval and once more, with Final set, when
	// the work ends.
	Progress(p Progress)
}

// ProgressInterval is how often use cases report progress.
const ProgressInterval = 200 * time.Millisecond

func (a *App) getenv(k string) string {
	if a.Getenv == nil {
		return ""
	}
	return a.Getenv(k)
}

func (a *App) warnf(format string, args ...any) {
	if a.Events != nil {
		a.Events.Warn(sprintf(format, args...))
	}
}

func (a *App) infof(format string, args ...any) {
	if a.Events != nil {
		a.Events.Info(sprintf(format, args...))
	}
}

func (a *App) progress(p Progress) {
	if a.Events != nil {
		a.Events.Progress(p)
	}
}

func (a *App) logger() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// Close closes what use cases opened outside a scope (see WithScope), in
// reverse order.
func (a *App) Close() error {
	a.mu.Lock()
	cs := a.closers
	a.closers = nil
	a.mu.Unlock()
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		errs = append(errs, cs[i].Close())
	}
	return errors.Join(errs...)
}

// scope collects what use cases open under one context.
type scope struct {
	mu sync.Mutex
	cs []io.Closer
}

type scopeKey struct{}

// WithScope returns a context under which the repositories and backends
// use cases open are closed by the returned function, instead of by
// App.Close: for long-running callers (the daemon, the operator) that
// open repositories again and again.
func WithScope(ctx context.Context) (context.Context, func()) {
	sc := &scope{}
	return context.WithValue(ctx, scopeKey{}, sc), func() {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		for i := len(sc.cs) - 1; i >= 0; i-- {
			_ = sc.cs[i].Close()
		}
		sc.cs = nil
	}
}

// Track registers c to be closed with ctx's scope, else by Close.
func (a *App) Track(ctx context.Context, c io.Closer) {
	if sc, ok := ctx.Value(scopeKey{}).(*scope); ok {
		sc.mu.Lock()
		sc.cs = append(sc.cs, c)
		sc.mu.Unlock()
		return
	}
	a.mu.Lock()
	a.closers = append(a.closers, c)
	a.mu.Unlock()
}

// Exit codes of the program, which ExitCode derives from a use case's
// error.
const (
	ExitOK            = 0
	ExitError         = 1
	ExitPartial       = 3
	ExitViolation     = 4
	ExitNoRepository  = 10
	ExitNewerFormat   = 11
	ExitWrongPassword = 12
	ExitInterrupted   = 130
)

// PartialError is a use case that finished, but not all of it: a
// snapshot saved without some unreadable source files, a copy that did
// not go.
type PartialError struct{ Msg string }

func (e *PartialError) Error() string { return e.Msg }

// CodeError gives its error a specific exit code.
type CodeError struct {
	Code int
	Err  error
}

func (e *CodeError) Error() string { return e.Err.Error() }
func (e *CodeError) Unwrap() error { return e.Err }

// ExitCode is the exit code of a use case that returned err (0 for nil).
// A cancelled ctx means interrupted.
func ExitCode(ctx context.Context, err error) int {
	var ce *CodeError
	var pe *PartialError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ce):
		return ce.Code
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &pe):
		return ExitPartial
	case errors.Is(err, repository.ErrNoRepository):
		return ExitNoRepository
	case errors.Is(err, format.ErrNewerFormat):
		return ExitNewerFormat
	case errors.Is(err, repository.ErrWrongPassword):
		return ExitWrongPassword
	}
	return ExitError
}

// With returns an App with a's settings whose use cases report to ev: a
// plan job's steps go to the job's log. What it opens is closed with the
// context's scope, else by its own Close.
func (a *App) With(ev Events) *App {
	return &App{Getenv: a.Getenv, Storage: a.Storage, Log: a.Log, Events: ev, Program: a.Program, KDF: a.KDF, MemoryBudget: a.MemoryBudget}
}

// LogEvents writes a use case's warnings and notes to w, one line each,
// and no progress: a job's log.
type LogEvents struct {
	mu sync.Mutex
	W  io.Writer
}

func (e *LogEvents) Warn(msg string) { e.line("warning: " + msg) }
func (e *LogEvents) Info(msg string) { e.line(msg) }

// Progress is not logged.
func (e *LogEvents) Progress(Progress) {}

func (e *LogEvents) line(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = io.WriteString(e.W, s+"\n")
}
