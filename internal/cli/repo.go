package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/local"
)

// backendFor opens (or, with create, creates) the storage named by a
// repository location.
func backendFor(location string, create bool) (storage.Backend, error) {
	if location == "" {
		return nil, errors.New("no repository given: use -r/--repo or set BUNKER_REPOSITORY")
	}
	scheme, rest, found := strings.Cut(location, ":")
	if !found || len(scheme) == 1 || strings.ContainsAny(scheme, `/\.`) {
		// A plain path (also C:\ on Windows).
		scheme, rest = "local", location
	}
	switch scheme {
	case "local":
		dir, err := filepath.Abs(rest)
		if err != nil {
			return nil, err
		}
		if create {
			be, err := local.Create(dir)
			if err != nil {
				return nil, err
			}
			return be, nil
		}
		be, err := local.New(dir)
		if err != nil {
			if errors.Is(err, storage.ErrNotExist) {
				return nil, fmt.Errorf("repository %s: %w (directory does not exist)", dir, repository.ErrNoRepository)
			}
			return nil, err
		}
		return be, nil
	case "s3", "sftp", "azure", "gs", "rest":
		return nil, fmt.Errorf("repository location %q: the %s backend is not available in this build yet", location, scheme)
	default:
		return nil, fmt.Errorf("repository location %q: unknown scheme %q", location, scheme)
	}
}

// openRepo opens the repository of -r with the password.
func (a *App) openRepo(ctx context.Context) (*repository.Repository, error) {
	return a.openRepoAt(ctx, a.g.repo, "")
}

func (a *App) openRepoAt(ctx context.Context, location, passwordOverride string) (*repository.Repository, error) {
	be, err := backendFor(location, false)
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
	r.SetLogger(a.log)
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
	all, errs, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	for name, e := range errs {
		a.out.warnf("snapshot %s: %v", short(name), e)
	}
	return snapshot.Find(all, ref, f)
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
