package maintenance

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/bits-and-blooms/bitset"
	"golang.org/x/sync/errgroup"

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

// trailerOf is what a planned pack's own trailer says.
type trailerOf struct {
	entries    []pack.Entry
	unreadable error // the trailer did not open: only the index speaks
}

// judge decides whether a planned pack must be kept: it holds a reachable
// blob (by its trailer or by any index file) with no proven copy elsewhere.
func (p *copyProver) judge(ctx context.Context, tr trailerOf, indexed []pack.Entry, reach *reachSet) (verdict, error) {
	v := verdict{unreadable: tr.unreadable}
	inIndex := map[[33]byte]bool{}
	for _, e := range indexed {
		inIndex[key(e.ID, e.Type)] = true
	}
	for _, e := range slices.Concat(tr.entries, indexed) {
		if !reach.has(e.ID, e.Type) {
			continue
		}
		ok, err := p.proveCopy(ctx, e.ID, e.Type)
		if err != nil {
			return v, err
		}
		if !ok {
			v.keep = true
			break
		}
	}
	if v.keep {
		for _, e := range tr.entries {
			if !inIndex[key(e.ID, e.Type)] {
				v.unindexed = append(v.unindexed, e)
			}
		}
	}
	return v, nil
}

// prefetch proves, for many blobs at once, the first candidate copy of
// each: copies in one pack are read in a few large ranges instead of one
// request per blob (repacked blobs sit together in their new packs).
// Blobs it cannot prove are left for proveCopy to try every copy.
func (p *copyProver) prefetch(ctx context.Context, need map[[33]byte]pack.Entry) error {
	byPack := map[ID][]index.Location{}
	for _, e := range need {
		for _, l := range p.idx.LookupAll(e.ID, e.Type) {
			size, stored := p.stored[l.Pack]
			if !p.doomed[l.Pack] && stored && int64(l.Offset)+int64(l.Length) <= size {
				byPack[l.Pack] = append(byPack[l.Pack], l)
				break
			}
		}
	}
	packs := slices.Collect(maps.Keys(byPack))
	const maxGap, maxRange = 1 << 20, 32 << 20
	return forEach(ctx, packs, func(ctx context.Context, pk ID) error {
		locs := byPack[pk]
		slices.SortFunc(locs, func(a, b index.Location) int { return int(a.Offset) - int(b.Offset) })
		var buf []byte
		for i := 0; i < len(locs); {
			start, end := int64(locs[i].Offset), int64(locs[i].Offset)+int64(locs[i].Length)
			j := i + 1
			for j < len(locs) && int64(locs[j].Offset)-end <= maxGap && int64(locs[j].Offset)+int64(locs[j].Length)-start <= maxRange {
				end = max(end, int64(locs[j].Offset)+int64(locs[j].Length))
				j++
			}
			raw, err := p.r.ReadPack(ctx, pk, start, int(end-start), nil)
			if err != nil {
				return err
			}
			for _, l := range locs[i:j] {
				off := int64(l.Offset) - start
				plain, err := p.r.OpenSealed(l, raw[off:off+int64(l.Length)], buf[:0]) // checks the hash
				if err != nil {
					continue
				}
				buf = plain
				p.mu.Lock()
				p.proven[key(l.ID, l.Type)] = true
				p.mu.Unlock()
			}
			i = j
		}
		return nil
	})
}

// judgeAll judges the stored doomed packs: their trailers first, then one
// batch of reads proving the copies of the reachable blobs they hold, then
// each pack.
func (p *copyProver) judgeAll(ctx context.Context, contents map[ID][]pack.Entry, reach *reachSet) (map[ID]verdict, error) {
	var packs []ID
	for pk := range p.doomed {
		if _, ok := p.stored[pk]; ok {
			packs = append(packs, pk)
		}
	}
	var mu sync.Mutex
	trailers := map[ID]trailerOf{}
	err := forEach(ctx, packs, func(ctx context.Context, pk ID) error {
		entries, _, err := p.r.ReadTrailer(ctx, pk, p.stored[pk])
		tr := trailerOf{entries: entries}
		if err != nil {
			if !repository.IsDecodeError(err) {
				return fmt.Errorf("check planned pack %s: %w", pk.Short(), err)
			}
			tr = trailerOf{unreadable: err}
		}
		mu.Lock()
		trailers[pk] = tr
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	need := map[[33]byte]pack.Entry{}
	for _, pk := range packs {
		for _, e := range slices.Concat(trailers[pk].entries, contents[pk]) {
			if reach.has(e.ID, e.Type) {
				need[key(e.ID, e.Type)] = e
			}
		}
	}
	if err := p.prefetch(ctx, need); err != nil {
		return nil, err
	}
	out := map[ID]verdict{}
	for _, pk := range packs {
		v, err := p.judge(ctx, trailers[pk], contents[pk], reach)
		if err != nil {
			return nil, fmt.Errorf("check planned pack %s: %w", pk.Short(), err)
		}
		out[pk] = v
	}
	return out, nil
}

// forEach calls fn for every item with a few workers and returns the first
// error, after which the rest is skipped.
func forEach[T any](ctx context.Context, items []T, fn func(context.Context, T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, it := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, it) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// entryAt names one index entry: a blob at an offset of a pack.
type entryAt struct {
	pack   ID
	blob   [33]byte
	offset uint32
}

// falseSurvivors finds the index entries that would outlive a deleted copy
// of their blob without being true. A writer with the key may plant an
// entry placing a blob in some stored pack while the real copy still
// exists; once prune deletes the real copy (the blob is unreachable), the
// planted entry would be the blob's only one, and a later backup of that
// content would deduplicate against nothing. So every surviving entry of a
// blob that loses a copy here is checked against the pack's own trailer
// (one small read per pack), or, when the trailer does not open, by
// reading the blob back and hashing it. contents holds the entries of the
// deleted packs; the surviving entries of their blobs are found in v (by
// prefix) and read with full IDs from src, v's files. Transient read
// errors are returned.
func (p *copyProver) falseSurvivors(ctx context.Context, v *index.View, src index.Source, contents map[ID][]pack.Entry, deleted map[ID]bool) (map[entryAt]bool, error) {
	losing := map[[33]byte]bool{}
	candidates := bitset.New(uint(v.Len()))
	for pk := range deleted {
		for _, e := range contents[pk] {
			if k := key(e.ID, e.Type); !losing[k] {
				losing[k] = true
				v.Find(e.ID, e.Type, func(pos int) { candidates.Set(uint(pos)) })
			}
		}
	}
	out := map[entryAt]bool{}
	check := map[ID][]pack.Entry{}
	if len(losing) > 0 {
		err := v.EachIn(src, func(pos int) bool { return candidates.Test(uint(pos)) }, func(_ int, l index.Location) bool {
			pk, e := l.Pack, l.Entry
			size, stored := p.stored[pk]
			if deleted[pk] || !stored || !losing[key(e.ID, e.Type)] {
				return true // packs that are gone lose their entries anyway
			}
			if int64(e.Offset)+int64(e.Length) > size {
				out[entryAt{pk, key(e.ID, e.Type), e.Offset}] = true
				return true
			}
			check[pk] = append(check[pk], e)
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	var mu sync.Mutex
	err := forEach(ctx, slices.Collect(maps.Keys(check)), func(ctx context.Context, pk ID) error {
		trailer, _, err := p.r.ReadTrailer(ctx, pk, p.stored[pk])
		if err != nil && !repository.IsDecodeError(err) {
			return fmt.Errorf("check pack %s: %w", pk.Short(), err)
		}
		listed := map[pack.Entry]bool{}
		for _, e := range trailer {
			listed[e] = true
		}
		for _, e := range check[pk] {
			ok := listed[e]
			if err != nil { // no trailer to trust: the bytes decide
				if ok, err = p.readsBack(ctx, index.Location{Pack: pk, Entry: e}); err != nil {
					return err
				}
			}
			if !ok {
				mu.Lock()
				out[entryAt{pk, key(e.ID, e.Type), e.Offset}] = true
				mu.Unlock()
			}
		}
		return nil
	})
	return out, err
}

// readsBack reports whether the blob at l decrypts and hashes to its ID.
func (p *copyProver) readsBack(ctx context.Context, l index.Location) (bool, error) {
	sealed, err := p.r.ReadPack(ctx, l.Pack, int64(l.Offset), int(l.Length), nil)
	if err != nil {
		return false, err
	}
	plain, err := p.r.OpenSealed(l, sealed, nil)
	return err == nil && p.r.Hash(plain) == l.ID, nil
}
