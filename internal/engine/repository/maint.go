package repository

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
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

// Plans loads every maintenance plan. A plan object that cannot be read
// (damaged, or planted by someone without the key) is skipped with a
// warning: a plan only ever names packs to delete, so ignoring one makes
// maintenance delete less, never more (the sweep deletes only packs of
// plans it read). 'bunker check' names such objects and 'bunker repair
// maint' removes them.
func (r *Repository) Plans(ctx context.Context) ([]*Plan, error) {
	plans, damaged, err := r.PlansChecked(ctx)
	for name, e := range damaged {
		r.log.Warn("skipping unreadable maintenance plan", "object", "maint/"+name, "err", e)
	}
	return plans, err
}

// PlansChecked loads every maintenance plan and returns the plan objects
// that could not be read, by name, separately.
func (r *Repository) PlansChecked(ctx context.Context) ([]*Plan, map[string]error, error) {
	infos, err := r.List(ctx, storage.MaintFile)
	if err != nil {
		return nil, nil, err
	}
	var out []*Plan
	damaged := map[string]error{}
	for _, fi := range infos {
		if !strings.HasPrefix(fi.Name, planPrefix) {
			continue
		}
		var p Plan
		if err := r.LoadJSON(ctx, storage.MaintFile, fi.Name, &p); err != nil {
			if errors.Is(err, storage.ErrNotExist) {
				continue // swept meanwhile
			}
			if ctx.Err() != nil || !IsDecodeError(err) {
				return nil, nil, fmt.Errorf("maintenance plan: %w", err)
			}
			damaged[fi.Name] = err
			continue
		}
		p.Name, p.ModTime = fi.Name, fi.ModTime
		out = append(out, &p)
	}
	return out, damaged, nil
}

// IsDecodeError reports whether err says an object's bytes are bad (wrong
// header, failed authentication, bad encoding: damaged or forged) as
// opposed to the store failing to deliver them.
func IsDecodeError(err error) bool {
	return errors.Is(err, format.ErrCorrupt) || errors.Is(err, format.ErrNewerFormat) || errors.Is(err, crypto.ErrUnauthenticated)
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

// Unreadable is a coordination object that no bunker wrote with this
// repository's key: damaged, or planted by someone with write access to
// the store.
type Unreadable struct {
	Type   storage.FileType `json:"type"`
	Name   string           `json:"name"`
	Reason string           `json:"reason"`
}

// UnreadableObjects lists the objects in maint/ and sessions/ that are not
// what their name says: sessions and the lease that do not decrypt, names
// no bunker uses. Unreadable plans are reported by PlansChecked. Every
// command ignores these objects; 'bunker repair maint' removes them.
func UnreadableObjects(ctx context.Context, r *Repository) ([]Unreadable, error) {
	var out []Unreadable
	for _, t := range []storage.FileType{storage.SessionFile, storage.MaintFile} {
		infos, err := r.List(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, fi := range infos {
			switch {
			case t == storage.MaintFile && (strings.HasPrefix(fi.Name, planPrefix) || strings.HasPrefix(fi.Name, "clock-")):
				continue // plans: PlansChecked; clock probes are not sealed
			case t == storage.MaintFile && (fi.Name == "lease" || fi.Name == ledgerName), t == storage.SessionFile && strings.HasPrefix(fi.Name, "s-"):
				var v any = &SessionInfo{}
				if fi.Name == ledgerName {
					v = &retentionLedger{}
				}
				err := r.LoadJSON(ctx, t, fi.Name, v)
				if err == nil || errors.Is(err, storage.ErrNotExist) {
					continue
				}
				if !IsDecodeError(err) {
					return nil, err
				}
				out = append(out, Unreadable{Type: t, Name: fi.Name, Reason: fmt.Sprintf("unreadable %s object (%v)", t, err)})
			default:
				out = append(out, Unreadable{Type: t, Name: fi.Name, Reason: fmt.Sprintf("no bunker writes a %s object of this name", t)})
			}
		}
	}
	return out, nil
}
