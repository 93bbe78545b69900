package app

import (
	"context"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// RollbackRequest rolls a repository on a versioned store back to To.
type RollbackRequest struct {
	Repo Repo
	To   time.Time
	// Object, if set, receives every object the rollback changes and how
	// ("restored", "hidden", …).
	Object func(h storage.Handle, action string)
}

// RollbackResult says what a rollback did.
type RollbackResult struct {
	Location  string
	Snapshots int            // snapshots of the repository as of To
	Actions   map[string]int // objects changed, by action
}

// Rollback makes the repository what it was at req.To, on a store that
// keeps every version of an object: every object deleted or overwritten
// since gets its version from then back, objects written after are hidden.
// Before touching anything it proves that the repository as of To opens
// with the password.
func (a *App) Rollback(ctx context.Context, req RollbackRequest) (*RollbackResult, error) {
	be := req.Repo.Backend
	if be == nil {
		var err error
		if be, err = a.OpenRepoBackend(ctx, req.Repo, false, false); err != nil {
			return nil, err
		}
	}
	v, ok := storage.Find[storage.Versioner](be)
	if !ok {
		return nil, fmt.Errorf("%s does not keep old versions of objects: rollback needs a versioned store (an S3 bucket with versioning or Object Lock)", be.Location())
	}
	at := req.To.Format(time.RFC3339)
	view, err := v.AsOf(ctx, req.To)
	if err != nil {
		return nil, err
	}
	old, err := repository.Open(ctx, view, req.Repo.Password, a.Storage.KeyHint)
	if err != nil {
		return nil, fmt.Errorf("the repository as of %s: %w", at, err)
	}
	snaps, err := old.List(ctx, storage.SnapshotFile)
	if err != nil {
		return nil, fmt.Errorf("the repository as of %s: %w", at, err)
	}
	res := &RollbackResult{Location: be.Location(), Snapshots: len(snaps), Actions: map[string]int{}}
	err = v.RollBack(ctx, req.To, func(h storage.Handle, action string) {
		res.Actions[action]++
		if req.Object != nil {
			req.Object(h, action)
		}
	})
	if err != nil {
		return res, fmt.Errorf("rollback to %s: %w", at, err)
	}
	return res, nil
}
