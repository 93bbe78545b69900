package repository

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage"
)

func packName(id ID) string { return pack.Name(id) }

// Plan is a maintenance plan: packs that prune found unreferenced and
// will delete in a later sweep, once every session that was live when the
// plan was written has ended. Until then its packs are tombstoned: new
// backups do not deduplicate against them.
type Plan struct {
	Name     string    `json:"-"`
	ModTime  time.Time `json:"-"` // store time the plan was written
	Created  time.Time `json:"created"`
	Packs    []ID      `json:"packs"`
	Sessions []string  `json:"sessions"` // live sessions when written
	Bytes    int64     `json:"bytes"`
}

const planPrefix = "plan-"

// Plans loads every maintenance plan.
func (r *Repository) Plans(ctx context.Context) ([]*Plan, error) {
	infos, err := r.List(ctx, storage.MaintFile)
	if err != nil {
		return nil, err
	}
	var out []*Plan
	for _, fi := range infos {
		if !strings.HasPrefix(fi.Name, planPrefix) {
			continue
		}
		var p Plan
		if err := r.LoadJSON(ctx, storage.MaintFile, fi.Name, &p); err != nil {
			if errors.Is(err, storage.ErrNotExist) {
				continue // swept meanwhile
			}
			return nil, fmt.Errorf("maintenance plan: %w", err)
		}
		p.Name, p.ModTime = fi.Name, fi.ModTime
		out = append(out, &p)
	}
	return out, nil
}

// SavePlan stores a plan.
func (r *Repository) SavePlan(ctx context.Context, p *Plan) error {
	p.Name = planPrefix + hex.EncodeToString(randomBytes(12))
	return r.SaveJSONNamed(ctx, storage.MaintFile, p.Name, p, storage.SaveOptions{IfNotExists: true})
}

// RemovePlan deletes a plan.
func (r *Repository) RemovePlan(ctx context.Context, p *Plan) error {
	return r.be.Remove(ctx, storage.Handle{Type: storage.MaintFile, Name: p.Name})
}

// PlannedPacks returns the set of packs that any of the plans tombstones.
func PlannedPacks(plans []*Plan) map[ID]bool {
	planned := map[ID]bool{}
	for _, p := range plans {
		for _, pk := range p.Packs {
			planned[pk] = true
		}
	}
	return planned
}
