package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/location"
)

// Repo names a repository and its password.
type Repo struct {
	Location string
	Password string
	// Backend, when set, is the repository's storage, already opened
	// (by a caller that checks the location before asking for the
	// password); it is not opened again.
	Backend storage.Backend
	// Env is the repository's own storage environment (a plan
	// repository's env, resolved): each variable set here wins over the
	// App's (Storage.Getenv, else Getenv) for this repository's backend
	// only; one set to "" hides the App's.
	Env map[string]string
	// UploadBytes and DownloadBytes limit this repository's transfers
	// per second (0: no limit of its own); with the App's limits, the
	// stricter holds.
	UploadBytes, DownloadBytes int64
}

// OpenBackend opens (with create, creates; with objectLock, with Object
// Lock) the storage at loc with the App's storage options.
func (a *App) OpenBackend(ctx context.Context, loc string, create, objectLock bool) (storage.Backend, error) {
	return a.OpenRepoBackend(ctx, Repo{Location: loc}, create, objectLock)
}

// OpenRepoBackend opens the storage of repo like OpenBackend, with the
// repository's own environment and limits on top of the App's.
func (a *App) OpenRepoBackend(ctx context.Context, repo Repo, create, objectLock bool) (storage.Backend, error) {
	so := &a.Storage
	loc := repo.Location
	opts := location.Options{Create: create, ObjectLock: objectLock, Getenv: a.getenv, Policy: so.Policy}
	if so.Getenv != nil {
		opts.Getenv = so.Getenv
	}
	if len(repo.Env) > 0 {
		base := opts.Getenv
		opts.Getenv = func(k string) string {
			if v, ok := repo.Env[k]; ok {
				return v
			}
			return base(k)
		}
	}
	opts.Limits.UploadBytes, opts.Limits.DownloadBytes = stricter(so.UploadBytes, repo.UploadBytes), stricter(so.DownloadBytes, repo.DownloadBytes)
	opts.Limits.Connections = so.Connections
	if !so.AsOf.IsZero() {
		if create {
			return nil, errors.New("--repo-as-of reads a repository as it was, read-only: it cannot create one")
		}
		opts.AsOf = so.AsOf
	}
	opts.CacheDir = so.CacheDir
	if opts.CacheDir == "" && location.Remote(loc) {
		// Without a cache to keep, still cache for this use case in a
		// temporary directory: a tree pack is then read once, not once
		// per tree.
		if tmp, err := os.MkdirTemp("", "bunker-cache-"); err == nil {
			opts.CacheDir = tmp
			a.Track(ctx, removeDir(tmp))
		}
	}
	opts.Retry.Attempts = max(so.RetryAttempts, 1)
	log := a.logger()
	opts.Retry.OnRetry = func(op string, h storage.Handle, attempt int, err error, wait time.Duration) {
		log.Warn("retrying", "op", op, "object", h.String(), "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", err)
	}
	be, err := location.Open(ctx, loc, opts)
	if err != nil {
		if !location.Remote(loc) && !create && errors.Is(err, storage.ErrNotExist) {
			return nil, fmt.Errorf("repository %s: %w (directory does not exist)", loc, repository.ErrNoRepository)
		}
		return nil, err
	}
	a.Track(ctx, be)
	return be, nil
}

// stricter is the lower of two rate limits, 0 being none.
func stricter(a, b int64) int64 {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// Open opens the repository repo names. It is closed with ctx's scope
// (WithScope), else by Close.
func (a *App) Open(ctx context.Context, repo Repo) (*repository.Repository, error) {
	if repo.Password == "" {
		return nil, fmt.Errorf("repository %s: no password given", repo.Location)
	}
	be := repo.Backend
	if be == nil {
		var err error
		if be, err = a.OpenRepoBackend(ctx, repo, false, false); err != nil {
			return nil, err
		}
	}
	return a.OpenOn(ctx, be, repo.Password)
}

// OpenOn opens the repository on be, an opened backend, with password.
func (a *App) OpenOn(ctx context.Context, be storage.Backend, password string) (*repository.Repository, error) {
	r, err := repository.Open(ctx, be, password, a.Storage.KeyHint)
	if err != nil {
		return nil, err
	}
	a.Track(ctx, r)
	r.SetLogger(a.logger())
	for _, err := range r.DamagedKeys() {
		a.warnf("skipped %v (another key opened the repository; 'bunker key list' shows it, 'bunker key remove' removes it)", err)
	}
	return r, nil
}

// OpenIndexed opens the repository and loads its index.
func (a *App) OpenIndexed(ctx context.Context, repo Repo) (*repository.Repository, error) {
	r, err := a.Open(ctx, repo)
	if err != nil {
		return nil, err
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		return nil, fmt.Errorf("load index: %w", err)
	}
	a.SetMemoryBudget(r)
	return r, nil
}

// LoadSnapshots loads every snapshot of r, warning about those that
// cannot be read.
func (a *App) LoadSnapshots(ctx context.Context, r *repository.Repository) ([]*snapshot.Snapshot, error) {
	all, errs, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	for name, e := range errs {
		a.warnf("snapshot %s: %v", shortName(name), e)
	}
	return all, nil
}

// SetMemoryBudget gives the garbage collector a soft memory limit sized
// to the loaded index plus the working buffers of a backup or restore
// (packs, chunks, compression state), so transient buffers are collected
// before the process grows far past what it really holds. GOMEMLIMIT
// overrides it; it does nothing unless App.MemoryBudget is set.
func (a *App) SetMemoryBudget(r *repository.Repository) {
	a.setMemoryBudget(r, workingMemory)
}

// setMemoryBudget is SetMemoryBudget with work bytes of working room.
func (a *App) setMemoryBudget(r *repository.Repository, work int) {
	if a.getenv("GOMEMLIMIT") != "" || !a.MemoryBudget {
		return
	}
	// Twice the index is room for a merge, which briefly doubles its array.
	debug.SetMemoryLimit(int64(work + 2*indexBytesPerBlob*r.Index().Len()))
}

const (
	// workingMemory is room for a backup's or restore's buffers.
	workingMemory = 144 << 20
	// readaheadMemory is room for a restore from a remote store: its
	// live heap (read-ahead's 32 + 16 MiB, up to four 8 MiB ranges, the
	// files' buffers, the trees kept from the prescan) is 131-138 MB, so
	// under workingMemory the collector ran back to back (540 cycles;
	// user CPU 18-25 s against 7-9 s with room: docs/PERFORMANCE.md, S3).
	readaheadMemory = 208 << 20
	// indexBytesPerBlob is a little over what the in-memory index holds
	// per blob (about 32 bytes, index package doc).
	indexBytesPerBlob = 36
)

// maintenanceBudget is the soft memory limit for a prune's loading and
// planning, and the one for its sweep (0, 0: leave the limit alone): the
// index's size, estimated from its files' sizes, and working room, without
// a backup's room for merges. Planning marks with a bit per blob, so the
// limit keeps a prune of 100 million blobs near the index's own size
// instead of letting garbage double it (docs/PERFORMANCE.md, "Maintenance
// at scale").
func (a *App) maintenanceBudget(ctx context.Context, r *repository.Repository) (plan, sweep int64, err error) {
	if a.getenv("GOMEMLIMIT") != "" || !a.MemoryBudget {
		return 0, 0, nil
	}
	infos, err := r.List(ctx, storage.IndexFile)
	if err != nil {
		return 0, 0, err
	}
	var size int64
	for _, fi := range infos {
		size += fi.Size
	}
	return MaintenanceMemoryLimit(size), SweepMemoryLimit(size), nil
}

// MaintenanceMemoryLimit is the soft memory limit bunker prune keeps while
// it loads and plans, for index files of indexBytes in all.
func MaintenanceMemoryLimit(indexBytes int64) int64 {
	return int64(workingMemory + indexBytesPerBlob*index.ExpectEntries(indexBytes))
}

// SweepMemoryLimit is the soft memory limit bunker prune keeps while it
// sweeps, for index files of indexBytes in all: the sweep's own index of
// every index file beside the one the prune planned with, the full IDs
// its compaction reads back (suffixes, 24 bytes an entry with their
// bookkeeping), one compacted file (about 220 MB), and working room.
// bench/prunesim -sweep at 10M blobs: peak RSS 2,214 MiB without a limit,
// 1,355 MiB under 1,300 MiB, for 8% more CPU time.
func SweepMemoryLimit(indexBytes int64) int64 {
	return 2*MaintenanceMemoryLimit(indexBytes) + int64(24*index.ExpectEntries(indexBytes)) + 256<<20
}

// CacheRoot is where metadata caches go by default: $BUNKER_CACHE_DIR,
// else $XDG_CACHE_HOME/bunker, else ~/.cache/bunker; "" when none of
// them is set.
func (a *App) CacheRoot() string {
	switch {
	case a.getenv("BUNKER_CACHE_DIR") != "":
		return a.getenv("BUNKER_CACHE_DIR")
	case a.getenv("XDG_CACHE_HOME") != "":
		return filepath.Join(a.getenv("XDG_CACHE_HOME"), "bunker")
	case a.getenv("HOME") != "":
		return filepath.Join(a.getenv("HOME"), ".cache", "bunker")
	}
	return ""
}

// removeDir is an io.Closer that removes a directory tree.
type removeDir string

func (d removeDir) Close() error { return os.RemoveAll(string(d)) }

// shortName is the first 8 characters of an object name, for messages;
// names listed from storage may be shorter (stray files).
func shortName(name string) string {
	if len(name) > 8 {
		return name[:8]
	}
	return name
}
