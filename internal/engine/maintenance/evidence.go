package maintenance

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
)

// The sweep is the only place that deletes packs, and everything it reads
// besides the snapshots — plans, index files, their supersede claims, pack
// trailers — may have been written by a backup host that holds the key but
// not the right to delete. The rule that makes such objects harmless: a
// planned pack is deleted only if no evidence says it holds a reachable
// blob, or every reachable blob it holds has a copy in a pack that stays,
// proven by reading that copy back and hashing it. Evidence of where a blob
// lives is every index file, superseded or not, and the pack's own
// trailer. A planted object can add evidence (the pack is kept) but never
// remove it.

// verdict is what the sweep learned about one planned pack.
type verdict struct {
	keep bool
	// unindexed are trailer entries of a kept pack that no index file
	// lists; the compacted index adds them, so the blobs are found again.
	unindexed []pack.Entry
	// unreadable is set when the trailer could not be authenticated.
	unreadable error
}

// copyProver proves that a blob has a good copy outside the doomed packs.
type copyProver struct {
	r      *repository.Repository
	idx    *index.Index
	doomed map[ID]bool
	stored map[ID]int64

	mu     sync.Mutex
	proven map[[33]byte]bool
}

// proveCopy reports whether a copy of the blob outside the doomed packs
// reads back and hashes to its ID. Transient read errors are returned.
func (p *copyProver) proveCopy(ctx context.Context, id ID, t pack.BlobType) (bool, error) {
	k := key(id, t)
	p.mu.Lock()
	ok, seen := p.proven[k]
	p.mu.Unlock()
	if seen {
		return ok, nil
	}
	ok = false
	var buf []byte
	for _, l := range p.idx.LookupAll(id, t) {
		if p.doomed[l.Pack] {
			continue
		}
		size, stored := p.stored[l.Pack]
		if !stored || int64(l.Offset)+int64(l.Length) > size {
			continue
		}
		sealed, err := p.r.ReadPack(ctx, l.Pack, int64(l.Offset), int(l.Length), nil)
		if err != nil {
			return false, err
		}
		plain, err := p.r.OpenSealed(l, sealed, buf[:0])
		if err != nil {
			continue // a lying entry, or damage: not a copy
		}
		buf = plain
		if p.r.Hash(plain) == id {
			ok = true
			break
		}
	}
	p.mu.Lock()
	p.proven[k] = ok
	p.mu.Unlock()
	return ok, nil
}

// judge decides whether a planned pack must be kept: it holds a reachable
// blob (by its trailer or by any index file) with no proven copy elsewhere.
func (p *copyProver) judge(ctx context.Context, pk ID, indexed []pack.Entry, reach *blobSet) (verdict, error) {
	var v verdict
	trailer, _, err := p.r.ReadTrailer(ctx, pk, p.stored[pk])
	if err != nil {
		if !isBadBytes(err) {
			return v, err
		}
		// Only the index speaks for this pack now.
		v.unreadable = err
		trailer = nil
	}
	inIndex := map[[33]byte]bool{}
	for _, e := range indexed {
		inIndex[key(e.ID, e.Type)] = true
	}
	check := func(e pack.Entry) error {
		if v.keep || !reach.has(e.ID, e.Type) {
			return nil
		}
		ok, err := p.proveCopy(ctx, e.ID, e.Type)
		if err != nil {
			return err
		}
		if !ok {
			v.keep = true
		}
		return nil
	}
	for _, e := range trailer {
		if err := check(e); err != nil {
			return v, err
		}
	}
	for _, e := range indexed {
		if err := check(e); err != nil {
			return v, err
		}
	}
	if v.keep {
		for _, e := range trailer {
			if !inIndex[key(e.ID, e.Type)] {
				v.unindexed = append(v.unindexed, e)
			}
		}
	}
	return v, nil
}

// isBadBytes reports whether err says stored bytes are damaged or forged,
// rather than that the store failed to deliver them.
func isBadBytes(err error) bool {
	return errors.Is(err, format.ErrCorrupt) || errors.Is(err, crypto.ErrUnauthenticated) || errors.Is(err, format.ErrNewerFormat)
}

// judgeAll judges the stored doomed packs with a few workers.
func (p *copyProver) judgeAll(ctx context.Context, contents map[ID][]pack.Entry, reach *blobSet) (map[ID]verdict, error) {
	jobs := make(chan ID)
	out := map[ID]verdict{}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pk := range jobs {
				v, err := p.judge(ctx, pk, contents[pk], reach)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("check planned pack %s: %w", pk.Short(), err)
					cancel()
				}
				out[pk] = v
				mu.Unlock()
			}
		}()
	}
feed:
	for pk := range p.doomed {
		if _, ok := p.stored[pk]; !ok {
			continue
		}
		select {
		case jobs <- pk:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
