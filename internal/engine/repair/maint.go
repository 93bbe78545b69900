package repair

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// Maint finds the objects in maint/ and sessions/ that no bunker wrote
// with the repository's key (damaged or planted plans, leases, sessions,
// names no bunker uses) and removes them unless dryRun. report, if set,
// receives each object (removed reports whether it is gone). It returns
// the objects found, sorted by type and name.
func Maint(ctx context.Context, r *repository.Repository, dryRun bool, report func(u repository.Unreadable, removed bool)) ([]repository.Unreadable, error) {
	_, damaged, err := r.PlansChecked(ctx)
	if err != nil {
		return nil, err
	}
	bad, err := repository.UnreadableObjects(ctx, r)
	if err != nil {
		return nil, err
	}
	for name, e := range damaged {
		bad = append(bad, repository.Unreadable{Type: storage.MaintFile, Name: name, Reason: fmt.Sprintf("unreadable maintenance plan (%v)", e)})
	}
	slices.SortFunc(bad, func(x, y repository.Unreadable) int {
		return strings.Compare(string(x.Type)+"/"+x.Name, string(y.Type)+"/"+y.Name)
	})
	for _, u := range bad {
		if !dryRun {
			if err := r.Backend().Remove(ctx, storage.Handle{Type: u.Type, Name: u.Name}); err != nil && !errors.Is(err, storage.ErrNotExist) {
				return bad, fmt.Errorf("remove %s/%s: %w", u.Type, u.Name, err)
			}
		}
		if report != nil {
			report(u, !dryRun)
		}
	}
	return bad, nil
}
