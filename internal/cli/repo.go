package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/spf13/cobra"
)

// backendFor opens the storage named by a repository location, with the
// decorators of the global flags.
func (a *App) backendFor(ctx context.Context, loc string) (storage.Backend, error) {
	c, err := a.core()
	if err != nil {
		return nil, err
	}
	return c.OpenBackend(ctx, loc, false, false)
}

// core is the use cases' App for this invocation, made from the global
// flags on first use.
func (a *App) core() (*app.App, error) {
	a.coreMu.Lock()
	defer a.coreMu.Unlock()
	c := a.coreLocked()
	if a.coreReady {
		return c, nil
	}
	if a.g.repoErr != nil {
		return nil, a.g.repoErr
	}
	c.Getenv, c.Log, c.Events, c.Program = a.Getenv, a.log, cliEvents{a}, "bunker "+Version
	c.KDF, c.MemoryBudget = a.kdf(), a.memBudget
	c.Storage.Getenv, c.Storage.Policy = a.BackendGetenv, a.BackendPolicy
	if err := c.Configure(a.g.s); err != nil {
		return nil, err
	}
	a.coreReady = true
	return c, nil
}

// coreLocked is the use cases' App, made bare when needed (a.coreMu held).
func (a *App) coreLocked() *app.App {
	if a.c == nil {
		a.c = &app.App{Getenv: a.Getenv}
	}
	return a.c
}

// openRepo opens the repository of -r with the password.
func (a *App) openRepo(ctx context.Context) (*repository.Repository, error) {
	return a.openRepoAt(ctx, a.g.repo, "")
}

func (a *App) openRepoAt(ctx context.Context, location, passwordOverride string) (*repository.Repository, error) {
	c, err := a.core()
	if err != nil {
		return nil, err
	}
	be, err := a.backendFor(ctx, location)
	if err != nil {
		return nil, err
	}
	pw := passwordOverride
	if pw == "" {
		pw, err = a.password(ctx, "enter password for repository: ", false)
		if err != nil {
			return nil, err
		}
	}
	return c.OpenOn(ctx, be, pw)
}

// coreRepo is the use cases' App and the repository of -r with its
// password: what most commands start with (flags checked first).
func (a *App) coreRepo(ctx context.Context) (*app.App, app.Repo, error) {
	c, err := a.core()
	if err != nil {
		return nil, app.Repo{}, err
	}
	repo, err := a.repoRef(ctx)
	return c, repo, err
}

// repoRef is the repository of -r for a use case: its storage opened
// (so that a wrong location is reported before the password is asked
// for) and its password.
func (a *App) repoRef(ctx context.Context) (app.Repo, error) {
	be, err := a.backendFor(ctx, a.g.repo)
	if err != nil {
		return app.Repo{}, err
	}
	pw, err := a.password(ctx, "enter password for repository: ", false)
	if err != nil {
		return app.Repo{}, err
	}
	return app.Repo{Location: a.g.repo, Password: pw, Backend: be}, nil
}

// openRepoIndexed opens the repository and loads its index.
func (a *App) openRepoIndexed(ctx context.Context) (*repository.Repository, error) {
	r, err := a.openRepo(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		return nil, fmt.Errorf("load index: %w", err)
	}
	a.setMemoryBudget(r)
	return r, nil
}

type snapshotFilterFlags struct {
	hosts []string
	tags  []string
	paths []string
}

func (f *snapshotFilterFlags) filter() snapshot.Filter {
	return snapshot.Filter{Hosts: f.hosts, Tags: f.tags, Paths: f.paths}
}

// findSnapshot resolves "latest", an ID or a prefix.
func (a *App) findSnapshot(ctx context.Context, r *repository.Repository, ref string, f snapshot.Filter) (*snapshot.Snapshot, error) {
	all, err := a.loadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	return snapshot.Find(all, ref, f)
}

// loadSnapshots loads every snapshot, warning about those that cannot be
// read.
func (a *App) loadSnapshots(ctx context.Context, r *repository.Repository) ([]*snapshot.Snapshot, error) {
	c, err := a.core()
	if err != nil {
		return nil, err
	}
	return c.LoadSnapshots(ctx, r)
}

// splitSnapshotPath splits "ID:path/in/snapshot".
func splitSnapshotPath(ref string) (string, string) {
	id, sub, found := strings.Cut(ref, ":")
	if !found {
		return ref, ""
	}
	return id, sub
}

// setMemoryBudget gives the garbage collector a soft memory limit sized to
// the loaded index plus the working buffers of a backup or restore (packs,
// chunks, compression state), so transient buffers are collected before
// the process grows far past what it really holds. GOMEMLIMIT overrides.
func (a *App) setMemoryBudget(r *repository.Repository) {
	if c, err := a.core(); err == nil {
		c.SetMemoryBudget(r)
	}
}

// cacheRoot is the directory of the metadata caches, "" for none.
func (a *App) cacheRoot() string {
	if a.g.s.CacheDir != "" {
		return a.g.s.CacheDir
	}
	return (&app.App{Getenv: a.Getenv}).CacheRoot()
}

// repoRun is a command's RunE that opens the repository of -r first,
// for the commands that work on an open repository.
func (a *App) repoRun(run func(ctx context.Context, c *app.App, r *repository.Repository, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		c, r, err := a.coreOpen(ctx)
		if err != nil {
			return err
		}
		return run(ctx, c, r, args)
	}
}

// coreOpen is the use cases' App and the repository of -r, opened.
func (a *App) coreOpen(ctx context.Context) (*app.App, *repository.Repository, error) {
	c, err := a.core()
	if err != nil {
		return nil, nil, err
	}
	r, err := a.openRepo(ctx)
	return c, r, err
}

// refRun is a command's RunE that resolves the repository of -r (storage
// opened, password known) first, for the use cases that open it
// themselves.
func (a *App) refRun(run func(ctx context.Context, c *app.App, repo app.Repo, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		ctx := cmd.Context()
		return a.onRepo(ctx, func(c *app.App, repo app.Repo) error { return run(ctx, c, repo, args) })
	}
}

// onRepo runs fn with the use cases' App and the repository of -r.
func (a *App) onRepo(ctx context.Context, fn func(c *app.App, repo app.Repo) error) error {
	c, repo, err := a.coreRepo(ctx)
	if err != nil {
		return err
	}
	return fn(c, repo)
}
