// Package limit wraps a storage.Backend to bound how many operations run
// against the store at once and how fast data moves to and from it
// (--limit-upload, --limit-download).
//
// A Load holds its connection slot while its callback reads, and its
// download rate is enforced as the callback reads; a Save waits for its
// upload budget before it is handed to the store, so the average rate over
// a few objects is the limit.
package limit

import (
	"context"
	"io"

	"github.com/bunkerbackup/bunker/internal/storage"
	"golang.org/x/time/rate"
)

// Options are the limits; zero values mean unlimited.
type Options struct {
	Connections   int   // operations in flight at once
	UploadBytes   int64 // bytes per second to the store
	DownloadBytes int64 // bytes per second from the store
}

// burst is the most a single token wait asks for: large objects are paid
// for in slices of this size.
const burst = 256 << 10

// Backend is a limiting decorator.
type Backend struct {
	be       storage.Backend
	opts     Options
	sem      chan struct{}
	up, down *rate.Limiter
}

var _ storage.Backend = (*Backend)(nil)

// New wraps be. With all limits zero it returns be itself.
func New(be storage.Backend, opts Options) storage.Backend {
	if opts.Connections <= 0 && opts.UploadBytes <= 0 && opts.DownloadBytes <= 0 {
		return be
	}
	b := &Backend{be: be, opts: opts}
	if opts.Connections > 0 {
		b.sem = make(chan struct{}, opts.Connections)
	}
	if opts.UploadBytes > 0 {
		b.up = rate.NewLimiter(rate.Limit(opts.UploadBytes), burst)
	}
	if opts.DownloadBytes > 0 {
		b.down = rate.NewLimiter(rate.Limit(opts.DownloadBytes), burst)
	}
	return b
}

// Limits returns the limits b enforces: what a caller asked for reached
// the store.
func (b *Backend) Limits() Options { return b.opts }

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() storage.Backend { return b.be }

// Location returns the wrapped backend's location.
func (b *Backend) Location() string { return b.be.Location() }

// Features returns the wrapped backend's features.
func (b *Backend) Features() storage.Features { return b.be.Features() }

// Close closes the wrapped backend.
func (b *Backend) Close() error { return b.be.Close() }

func (b *Backend) acquire(ctx context.Context) (func(), error) {
	if b.sem == nil {
		return func() {}, nil
	}
	select {
	case b.sem <- struct{}{}:
		return func() { <-b.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// wait takes n bytes of budget from l, in slices no larger than its burst.
func wait(ctx context.Context, l *rate.Limiter, n int) error {
	if l == nil {
		return nil
	}
	for n > 0 {
		k := min(n, burst)
		if err := l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// Save waits for a slot and the upload budget, then saves.
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if err := wait(ctx, b.up, len(data)); err != nil {
		return err
	}
	release, err := b.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	return b.be.Save(ctx, h, data, opts)
}

// Load holds a slot while fn reads, at most at the download rate.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	release, err := b.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	if b.down == nil {
		return b.be.Load(ctx, h, length, offset, fn)
	}
	return b.be.Load(ctx, h, length, offset, func(rd io.Reader) error {
		return fn(&limitedReader{ctx: ctx, rd: rd, l: b.down})
	})
}

type limitedReader struct {
	ctx context.Context
	rd  io.Reader
	l   *rate.Limiter
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if len(p) > burst {
		p = p[:burst]
	}
	n, err := r.rd.Read(p)
	if n > 0 {
		if werr := r.l.WaitN(r.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Stat holds a slot.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	release, err := b.acquire(ctx)
	if err != nil {
		return storage.FileInfo{}, err
	}
	defer release()
	return b.be.Stat(ctx, h)
}

// List holds a slot while it reads the listing, but not while fn runs, so
// that fn may use the backend (a nested call could otherwise wait forever
// for the slot its own listing holds).
func (b *Backend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	if b.sem == nil {
		return b.be.List(ctx, t, fn)
	}
	release, err := b.acquire(ctx)
	if err != nil {
		return err
	}
	var infos []storage.FileInfo
	err = b.be.List(ctx, t, func(fi storage.FileInfo) error {
		infos = append(infos, fi)
		return nil
	})
	release()
	if err != nil {
		return err
	}
	for _, fi := range infos {
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Remove holds a slot.
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	release, err := b.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	return b.be.Remove(ctx, h)
}
