package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// SnapshotCacheTTL is how long GET /api/v1/snapshots serves a listing
// before it opens the repository again.
const SnapshotCacheTTL = 30 * time.Second

// maxAPIOpens bounds how many repositories the API opens at once:
// opening one runs its password command and a full key derivation
// (argon2id: tens of MiB of memory each).
const maxAPIOpens = 2

// snapshotCache shares and caches the API's snapshot listings: one
// listing per repository in flight, its result served for
// SnapshotCacheTTL, at most maxAPIOpens repositories open at once.
type snapshotCache struct {
	once    sync.Once
	mu      sync.Mutex
	entries map[string]*snapEntry
	sem     chan struct{}
}

type snapEntry struct {
	done chan struct{} // closed when the listing has ended
	list []SnapshotInfo
	err  error
	at   time.Time
}

// snapshots lists repo's snapshots through the cache. A failed listing
// is not kept: the next request tries again.
func (d *Daemon) snapshots(ctx context.Context, p *plan.Plan, repo string) ([]SnapshotInfo, error) {
	c := &d.snaps
	c.once.Do(func() {
		c.entries = map[string]*snapEntry{}
		c.sem = make(chan struct{}, maxAPIOpens)
	})
	c.mu.Lock()
	e := c.entries[repo]
	if e != nil {
		select {
		case <-e.done:
			if e.err != nil || d.clock.Now().Sub(e.at) >= SnapshotCacheTTL {
				e = nil // stale: list again
			}
		default: // in flight: wait for it below
		}
	}
	if e == nil {
		e = &snapEntry{done: make(chan struct{})}
		c.entries[repo] = e
		// The listing outlives the request that started it, so that
		// the requests waiting for it and the cache get its result.
		go d.listSnapshots(context.WithoutCancel(ctx), c, e, p, repo)
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.list, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (d *Daemon) listSnapshots(ctx context.Context, c *snapshotCache, e *snapEntry, p *plan.Plan, repo string) {
	defer close(e.done)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	case <-ctx.Done():
		e.err = ctx.Err()
		return
	}
	e.list, e.err = d.o.Runner.Snapshots(ctx, p, repo)
	e.at = d.clock.Now()
}
