package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
)

type object struct {
	data    []byte
	modTime time.Time
}

// Backend is an in-memory storage.Backend. It is safe for concurrent use.
type Backend struct {
	now func() time.Time

	mu         sync.RWMutex
	objects    map[storage.Handle]object
	appendOnly bool
}

var _ storage.Backend = (*Backend)(nil)

// New returns an empty backend whose ModTimes come from time.Now.
func New() *Backend { return NewWithClock(nil) }

// NewWithClock returns an empty backend whose ModTimes come from now
// (time.Now if nil). now must be safe for concurrent use.
func NewWithClock(now func() time.Time) *Backend {
	if now == nil {
		now = time.Now
	}
	return &Backend{now: now, objects: make(map[storage.Handle]object)}
}

// SetAppendOnly switches append-only mode: while on, Remove and the
// overwrite of an existing object fail with storage.ErrPermission, and
// Features reports AppendOnly.
func (b *Backend) SetAppendOnly(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.appendOnly = on
}

// Location returns "mem".
func (b *Backend) Location() string { return "mem" }

// Features reports atomic conditional create, and AppendOnly when set.
func (b *Backend) Features() storage.Features {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return storage.Features{ConditionalCreate: true, AppendOnly: b.appendOnly}
}

// Close does nothing; the objects stay readable.
func (b *Backend) Close() error { return nil }

// Save stores a copy of data. opts.RetainUntil is ignored.
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if err := h.Valid(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	obj := object{data: bytes.Clone(data), modTime: b.now()}
	if obj.data == nil {
		obj.data = []byte{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.objects[h]; ok {
		if opts.IfNotExists {
			return fmt.Errorf("save %v: %w", h, storage.ErrExists)
		}
		if b.appendOnly {
			return fmt.Errorf("save %v: overwrite in append-only mode: %w", h, storage.ErrPermission)
		}
	}
	b.objects[h] = obj
	return nil
}

// Load calls fn with a reader of a copy of the requested range.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := h.Valid(); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("load %v: %w", h, err)
	}
	if length < 0 || offset < 0 {
		return storage.Permanent(fmt.Errorf("load %v: invalid range: offset %d, length %d", h, offset, length))
	}
	b.mu.RLock()
	obj, ok := b.objects[h]
	b.mu.RUnlock()
	if !ok {
		return fmt.Errorf("load %v: %w", h, storage.ErrNotExist)
	}
	n, err := storage.RangeLength(int64(len(obj.data)), length, offset)
	if err != nil {
		return fmt.Errorf("load %v: %w", h, err)
	}
	// Stored slices are never modified, only replaced, so copying outside
	// the lock is safe.
	buf := bytes.Clone(obj.data[offset : offset+n])
	if err := fn(bytes.NewReader(buf)); err != nil {
		return fmt.Errorf("load %v: %w", h, err)
	}
	return nil
}

// Stat returns the size and ModTime of an object.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	if err := h.Valid(); err != nil {
		return storage.FileInfo{}, fmt.Errorf("stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return storage.FileInfo{}, fmt.Errorf("stat %v: %w", h, err)
	}
	b.mu.RLock()
	obj, ok := b.objects[h]
	b.mu.RUnlock()
	if !ok {
		return storage.FileInfo{}, fmt.Errorf("stat %v: %w", h, storage.ErrNotExist)
	}
	return storage.FileInfo{Name: h.Name, Size: int64(len(obj.data)), ModTime: obj.modTime}, nil
}

// List calls fn for every object of type t. It works on a snapshot taken
// when it starts, so fn may call the backend.
func (b *Backend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	if !t.Known() {
		return storage.Permanent(fmt.Errorf("list %q: unknown file type", t))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	b.mu.RLock()
	var infos []storage.FileInfo
	for h, obj := range b.objects {
		if h.Type == t {
			infos = append(infos, storage.FileInfo{Name: h.Name, Size: int64(len(obj.data)), ModTime: obj.modTime})
		}
	}
	b.mu.RUnlock()
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %s: %w", t, err)
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes an object; a missing object is not an error. In
// append-only mode it fails with storage.ErrPermission.
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	if err := h.Valid(); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove %v: %w", h, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.appendOnly {
		return fmt.Errorf("remove %v: append-only mode: %w", h, storage.ErrPermission)
	}
	delete(b.objects, h)
	return nil
}
