package app

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/checker"
	"github.com/bunkerbackup/bunker/internal/units"
)

// CheckRequest is a check of a repository's structure and, when asked,
// of its data.
type CheckRequest struct {
	Repo Repo
	// Options says what to read (ReadData, a subset); its Progress is
	// the use case's own (reported through Events).
	Options checker.Options
}

// CheckResult is what a check found.
type CheckResult struct {
	checker.Result
	// Duration is the time the check took once the repository was open.
	Duration time.Duration
}

// Check checks the repository: index files, packs, snapshots and every
// tree they reference, and with ReadData the packs' data. Its progress
// (Op "check": Packs of PacksTotal read, BytesRead) goes to Events. Once
// the check has run its result is returned, also with the error a
// harmful problem gives.
func (a *App) Check(ctx context.Context, req CheckRequest) (*CheckResult, error) {
	r, err := a.Open(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	opts := req.Options
	// The checker's workers report; the ticker reads.
	var done, total, bytes atomic.Int64
	opts.Progress = func(d, t int, b int64) { done.Store(int64(d)); total.Store(int64(t)); bytes.Store(b) }
	stop := a.ticker(func(final bool) {
		p := Progress{Op: "check", Elapsed: time.Since(start), Packs: done.Load(), PacksTotal: total.Load(), BytesRead: bytes.Load(), Final: final}
		if p.PacksTotal > 0 || final {
			a.progress(p)
		}
	})
	res, err := checker.New(r, opts).Run(ctx)
	stop()
	if err != nil {
		return nil, err
	}
	out := &CheckResult{Result: *res, Duration: time.Since(start)}
	if !res.OK() {
		return out, fmt.Errorf("repository has errors: %d problems found; see 'bunker repair'", res.Harmful())
	}
	return out, nil
}

// ParseReadDataSubset sets in opts the subset of data a check reads:
// N% or a size such as 500M (random packs), or n/t (the n-th of t
// slices). The flag --read-data-subset and a plan's read_data_subset
// take this grammar.
func ParseReadDataSubset(subset string, opts *checker.Options) error {
	if subset == "" {
		return nil
	}
	sub, err := units.ParseSubset(subset)
	if err != nil {
		return fmt.Errorf("--read-data-subset %q: %w", subset, err)
	}
	opts.ReadData = true
	opts.SubsetPercent, opts.SubsetBytes, opts.SubsetPart, opts.SubsetTotal = sub.Percent, sub.Bytes, sub.Part, sub.Total
	return nil
}
