package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/location"
	"github.com/bunkerbackup/bunker/internal/timespec"
)

// backendFor opens (or, with create, creates) the storage named by a
// repository location, with the decorators of the global flags.
func (a *App) backendFor(ctx context.Context, loc string, create bool) (storage.Backend, error) {
	return a.openBackend(ctx, loc, location.Options{Create: create})
}

// backendForInit creates the storage of a new repository, with Object Lock
// when asked.
func (a *App) backendForInit(ctx context.Context, loc string, objectLock bool) (storage.Backend, error) {
	return a.openBackend(ctx, loc, location.Options{Create: true, ObjectLock: objectLock})
}

func (a *App) openBackend(ctx context.Context, loc string, opts location.Options) (storage.Backend, error) {
	create := opts.Create
	opts.Getenv = a.Getenv
	if a.BackendGetenv != nil {
		opts.Getenv = a.BackendGetenv
	}
	opts.Policy = a.BackendPolicy
	if opts.Policy == nil {
		var err error
		if opts.Policy, err = a.flagPolicy(); err != nil {
			return nil, err
		}
	}
	var err error
	if opts.Limits.UploadBytes, err = parseRate(a.g.limitUpload); err != nil {
		return nil, fmt.Errorf("--limit-upload: %w", err)
	}
	if opts.Limits.DownloadBytes, err = parseRate(a.g.limitDownload); err != nil {
		return nil, fmt.Errorf("--limit-download: %w", err)
	}
	opts.Limits.Connections = a.g.connections
	if a.g.repoAsOf != "" {
		if create {
			return nil, errors.New("--repo-as-of opens a repository read-only: it cannot be used to create one")
		}
		if opts.AsOf, err = timespec.ParseTime(a.g.repoAsOf); err != nil {
			return nil, fmt.Errorf("--repo-as-of: %w", err)
		}
	}
	if !a.g.noCache {
		opts.CacheDir = a.cacheRoot()
	}
	if opts.CacheDir == "" && location.Remote(loc) {
		// Without a cache to keep, still cache for this command in a
		// temporary directory: a tree pack is then read once, not once
		// per tree.
		tmp, err := os.MkdirTemp("", "bunker-cache-")
		if err == nil {
			opts.CacheDir = tmp
			a.addCloserCtx(ctx, removeDir(tmp))
		}
	}
	opts.Retry.Attempts = max(a.g.retryAttempts, 1)
	opts.Retry.OnRetry = func(op string, h storage.Handle, attempt int, err error, wait time.Duration) {
		a.log.Warn("retrying", "op", op, "object", h.String(), "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", err)
	}
	be, err := location.Open(ctx, loc, opts)
	if err != nil {
		if !location.Remote(loc) && !create && errors.Is(err, storage.ErrNotExist) {
			return nil, fmt.Errorf("repository %s: %w (directory does not exist)", loc, repository.ErrNoRepository)
		}
		return nil, err
	}
	a.addCloserCtx(ctx, be)
	return be, nil
}

// cacheRoot is the directory of the metadata caches, "" for none.
func (a *App) cacheRoot() string {
	switch {
	case a.g.cacheDir != "":
		return a.g.cacheDir
	case a.Getenv("BUNKER_CACHE_DIR") != "":
		return a.Getenv("BUNKER_CACHE_DIR")
	case a.Getenv("XDG_CACHE_HOME") != "":
		return filepath.Join(a.Getenv("XDG_CACHE_HOME"), "bunker")
	case a.Getenv("HOME") != "":
		return filepath.Join(a.Getenv("HOME"), ".cache", "bunker")
	}
	return ""
}

// parseRate reads a transfer rate in bytes per second: a plain number is
// KiB (as restic's flags), K/M/G suffixes are binary units.
func parseRate(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	mult := int64(1 << 10)
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(s), "/S"), "B")
	t = strings.TrimSuffix(t, "I")
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, t[:len(t)-1]
	}
	v, ok := parseFraction(t, 0, float64(int64(1)<<50)/float64(mult))
	if !ok {
		return 0, fmt.Errorf("%q is not a rate (examples: 800K, 5M, 1.5G, or a number of KiB)", s)
	}
	return int64(v * float64(mult)), nil
}

// openRepo opens the repository of -r with the password.
func (a *App) openRepo(ctx context.Context) (*repository.Repository, error) {
	return a.openRepoAt(ctx, a.g.repo, "")
}

func (a *App) openRepoAt(ctx context.Context, location, passwordOverride string) (*repository.Repository, error) {
	be, err := a.backendFor(ctx, location, false)
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
	r, err := repository.Open(ctx, be, pw, a.g.keyHint)
	if err != nil {
		return nil, err
	}
	a.addCloserCtx(ctx, r)
	r.SetLogger(a.log)
	for _, err := range r.DamagedKeys() {
		a.out.warnf("skipped %v (another key opened the repository; 'bunker key list' shows it, 'bunker key remove' removes it)", err)
	}
	return r, nil
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
	all, errs, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	for name, e := range errs {
		a.out.warnf("snapshot %s: %v", short(name), e)
	}
	return all, nil
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
	if a.Getenv("GOMEMLIMIT") != "" || !a.memBudget {
		return
	}
	const working = 144 << 20
	const perBlob = 64 // in-memory index entry plus slack
	debug.SetMemoryLimit(int64(working + 2*perBlob*r.Index().Len()))
}

// saveTree stores t in r, split when it is large; with dryRun it only
// computes the ID it would have.
func saveTree(ctx context.Context, r *repository.Repository, t *tree.Tree, dryRun bool) (tree.ID, error) {
	return tree.Save(t, func(b []byte) (tree.ID, error) {
		if dryRun {
			return r.Hash(b), nil
		}
		id, _, err := r.SaveBlob(ctx, pack.TreeBlob, b)
		return id, err
	})
}

// removeDir is an io.Closer that removes a directory tree.
type removeDir string

func (d removeDir) Close() error { return os.RemoveAll(string(d)) }

// flagPolicy is the repository policy of --allow-schemes, --allow-hosts
// and --no-ambient-credentials (or their variables), nil when none is set.
func (a *App) flagPolicy() (*location.Policy, error) {
	list := func(v []string, env string) []string {
		if len(v) > 0 {
			return v
		}
		var out []string
		for _, s := range strings.Split(a.Getenv(env), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	schemes, hosts := list(a.g.allowSchemes, "BUNKER_ALLOW_SCHEMES"), list(a.g.allowHosts, "BUNKER_ALLOW_HOSTS")
	noAmbient := a.g.noAmbient || a.Getenv("BUNKER_NO_AMBIENT_CREDENTIALS") == "1"
	if len(schemes) == 0 && len(hosts) == 0 && !noAmbient {
		return nil, nil
	}
	p, err := location.NewPolicy(location.PolicyOptions{Schemes: schemes, Hosts: hosts, AmbientCredentials: !noAmbient})
	if err != nil {
		return nil, fmt.Errorf("--allow-schemes/--allow-hosts: %w", err)
	}
	return p, nil
}
