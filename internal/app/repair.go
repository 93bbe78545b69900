package app

import (
	"context"

	"github.com/bunkerbackup/bunker/internal/engine/repair"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
)

// RepairIndex rebuilds the index of repo from its packs' trailers
// (bunker repair index); opts says where skipped packs and progress go.
func (a *App) RepairIndex(ctx context.Context, repo Repo, opts repair.IndexOptions) (*repair.IndexResult, error) {
	r, err := a.Open(ctx, repo)
	if err != nil {
		return nil, err
	}
	return repair.Index(ctx, r, opts)
}

// RepairSnapshots rewrites the snapshots of repo that reference lost data
// (bunker repair snapshots); each repair commits through the engine's
// write session like every other writer.
func (a *App) RepairSnapshots(ctx context.Context, repo Repo, opts repair.Options) (*repair.Result, error) {
	r, err := a.Open(ctx, repo)
	if err != nil {
		return nil, err
	}
	return repair.Snapshots(ctx, r, opts)
}

// RepairMaint removes the objects in maint/ and sessions/ that no bunker
// wrote with repo's key (bunker repair maint), or with dryRun only lists
// them; report receives each.
func (a *App) RepairMaint(ctx context.Context, repo Repo, dryRun bool, report func(u repository.Unreadable, removed bool)) ([]repository.Unreadable, error) {
	r, err := a.Open(ctx, repo)
	if err != nil {
		return nil, err
	}
	return repair.Maint(ctx, r, dryRun, report)
}
