// Package retry wraps a storage.Backend so that transient failures
// (timeouts, resets, 5xx replies, a server restarting) are retried with
// exponential backoff and full jitter, while permanent ones (a missing
// object, refused credentials, a locked object; see storage.IsPermanent)
// are returned at once, so wrong credentials never cause a retry storm.
//
// Retrying keeps the Backend contract: a Load callback may run again with a
// fresh reader, but only when the failure came from reading the store, not
// from the callback itself; a List that fails midway resumes without
// handing the callback a name twice; a conditional create whose first
// attempt reached the store although its reply was lost succeeds when the
// stored object holds the same bytes.
package retry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// Options tune the retries. The zero value means the defaults.
type Options struct {
	// Attempts is how many times an operation is tried in all (default 10).
	Attempts int
	// Base is the backoff before the second attempt (default 250 ms); it
	// doubles with each attempt up to Max (default 30 s). The actual
	// wait is drawn uniformly from [0, backoff) (full jitter).
	Base, Max time.Duration
	// OnRetry, when set, hears of every failed attempt that will be
	// retried: the operation, the object, the attempt number (1-based),
	// the error and the wait before the next attempt.
	OnRetry func(op string, h storage.Handle, attempt int, err error, wait time.Duration)
	// sleep is replaced in tests.
	sleep func(ctx context.Context, d time.Duration) error
}

// Backend is a retrying decorator.
type Backend struct {
	be   storage.Backend
	opts Options
}

var _ storage.Backend = (*Backend)(nil)

// New wraps be.
func New(be storage.Backend, opts Options) *Backend {
	if opts.Attempts <= 0 {
		opts.Attempts = 10
	}
	if opts.Base <= 0 {
		opts.Base = 250 * time.Millisecond
	}
	if opts.Max <= 0 {
		opts.Max = 30 * time.Second
	}
	if opts.sleep == nil {
		opts.sleep = sleepCtx
	}
	return &Backend{be: be, opts: opts}
}

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() storage.Backend { return b.be }

// Location returns the wrapped backend's location.
func (b *Backend) Location() string { return b.be.Location() }

// Features returns the wrapped backend's features.
func (b *Backend) Features() storage.Features { return b.be.Features() }

// Close closes the wrapped backend.
func (b *Backend) Close() error { return b.be.Close() }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// do runs fn until it succeeds, fails permanently, or runs out of
// attempts. The error of the last attempt is returned, annotated with the
// number of attempts when there was more than one.
func (b *Backend) do(ctx context.Context, op string, h storage.Handle, fn func(attempt int) error) error {
	if op == "list" {
		if !h.Type.Known() {
			return storage.Permanent(fmt.Errorf("list %s: unknown type", h.Type))
		}
	} else if err := h.Valid(); err != nil {
		return storage.Permanent(err)
	}
	backoff := b.opts.Base
	var err error
	for attempt := 1; ; attempt++ {
		err = fn(attempt)
		if err == nil || storage.IsPermanent(err) || ctx.Err() != nil {
			return err
		}
		if attempt >= b.opts.Attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		wait := time.Duration(rand.Int64N(int64(backoff)) + 1)
		if b.opts.OnRetry != nil {
			b.opts.OnRetry(op, h, attempt, err, wait)
		}
		if serr := b.opts.sleep(ctx, wait); serr != nil {
			return err
		}
		backoff = min(2*backoff, b.opts.Max)
	}
}

// Save retries a failed save. For a conditional create, an ErrExists on a
// retry is success when the stored object is data: the earlier attempt
// reached the store.
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	return b.do(ctx, "save", h, func(attempt int) error {
		err := b.be.Save(ctx, h, data, opts)
		if attempt > 1 && opts.IfNotExists && errors.Is(err, storage.ErrExists) {
			if same, cerr := b.holds(ctx, h, data); cerr == nil && same {
				return nil
			}
		}
		return err
	})
}

// holds reports whether the stored object h is exactly data.
func (b *Backend) holds(ctx context.Context, h storage.Handle, data []byte) (bool, error) {
	got, err := storage.LoadAll(ctx, b.be, h)
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, data), nil
}

// readErr remembers an error that came from the store's reader, so that a
// callback failing because of it can be told from one failing on its own.
type readErr struct {
	rd  io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.rd.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// Load retries when the store fails, also midway through the callback's
// reading; an error of the callback's own is returned at once.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	return b.do(ctx, "load", h, func(int) error {
		var own error
		err := b.be.Load(ctx, h, length, offset, func(rd io.Reader) error {
			re := &readErr{rd: rd}
			ferr := fn(re)
			if ferr != nil && re.err == nil && !errors.Is(ferr, io.ErrUnexpectedEOF) {
				own = ferr
			}
			return ferr
		})
		if own != nil && errors.Is(err, own) {
			return storage.Permanent(err)
		}
		return err
	})
}

// Stat retries a failed stat.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	var fi storage.FileInfo
	err := b.do(ctx, "stat", h, func(int) error {
		var err error
		fi, err = b.be.Stat(ctx, h)
		return err
	})
	return fi, err
}

// List retries a listing that fails midway, skipping the names it has
// already handed to fn.
func (b *Backend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	seen := map[string]struct{}{}
	return b.do(ctx, "list", storage.Handle{Type: t}, func(int) error {
		var own error
		err := b.be.List(ctx, t, func(fi storage.FileInfo) error {
			if _, ok := seen[fi.Name]; ok {
				return nil
			}
			seen[fi.Name] = struct{}{}
			if err := fn(fi); err != nil {
				own = err
				return err
			}
			return nil
		})
		if own != nil && errors.Is(err, own) {
			return storage.Permanent(err)
		}
		return err
	})
}

// Remove retries a failed removal (removal is idempotent).
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	return b.do(ctx, "remove", h, func(int) error { return b.be.Remove(ctx, h) })
}
