// Package cache wraps a remote storage.Backend with a local copy of the
// repository's metadata — index files, snapshots, and the packs the engine
// names as holding trees — so that listing snapshots, browsing and
// restoring do not download them again.
//
// Only content-addressed objects are cached: their name is the hash of
// their bytes, so a cached copy can never be stale, only superfluous. Each
// cached file carries a BLAKE3 checksum of its content; a file that fails
// it (a damaged disk, a killed writer) is deleted and the object is read
// from the store. A complete listing of a cached type drops cached objects
// the store no longer has. Writes to the cache go through a temporary file
// and a rename, so concurrent processes sharing the directory are safe.
// The cache is an optimisation: when it cannot be written, the backend
// works uncached.
package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/zeebo/blake3"
)

// staleTemp is the age after which a temporary file is taken to be left
// over by a killed process.
const staleTemp = time.Hour

// sumSize is the length of the checksum trailer of every cached file.
const sumSize = 32

// Backend is a caching decorator.
type Backend struct {
	be  storage.Backend
	dir string

	mu       sync.Mutex
	metaPack map[string]struct{}      // packs hinted as holding metadata
	verified map[storage.Handle]int64 // entries checked whole by this process, and their sizes
}

var _ storage.Backend = (*Backend)(nil)

// New wraps be with a cache in dir (created if missing).
func New(be storage.Backend, dir string) (*Backend, error) {
	for _, t := range []storage.FileType{storage.IndexFile, storage.SnapshotFile, storage.PackFile} {
		if err := os.MkdirAll(filepath.Join(dir, string(t)), 0o700); err != nil {
			return nil, fmt.Errorf("cache %s: %w", dir, err)
		}
	}
	return &Backend{be: be, dir: dir, metaPack: map[string]struct{}{}, verified: map[storage.Handle]int64{}}, nil
}

// Dir returns the cache directory.
func (b *Backend) Dir() string { return b.dir }

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() storage.Backend { return b.be }

// Location returns the wrapped backend's location.
func (b *Backend) Location() string { return b.be.Location() }

// Features returns the wrapped backend's features.
func (b *Backend) Features() storage.Features { return b.be.Features() }

// Close closes the wrapped backend.
func (b *Backend) Close() error { return b.be.Close() }

// HintMetadata marks the pack h as one holding metadata (trees), worth
// keeping locally once read.
func (b *Backend) HintMetadata(h storage.Handle) {
	if h.Type != storage.PackFile {
		return
	}
	b.mu.Lock()
	b.metaPack[h.Name] = struct{}{}
	b.mu.Unlock()
}

func (b *Backend) cacheable(h storage.Handle) bool {
	if h.Valid() != nil {
		return false
	}
	switch h.Type {
	case storage.IndexFile, storage.SnapshotFile:
		return true
	case storage.PackFile:
		b.mu.Lock()
		_, ok := b.metaPack[h.Name]
		b.mu.Unlock()
		return ok
	}
	return false
}

func (b *Backend) path(h storage.Handle) string {
	return filepath.Join(b.dir, string(h.Type), h.Name)
}

// get returns the cached content of h, or nil. A damaged entry is removed.
func (b *Backend) get(h storage.Handle) []byte {
	raw, err := os.ReadFile(b.path(h))
	if err != nil || len(raw) < sumSize {
		if err == nil {
			_ = os.Remove(b.path(h))
		}
		return nil
	}
	data, sum := raw[:len(raw)-sumSize], raw[len(raw)-sumSize:]
	want := blake3.Sum256(data)
	if !bytes.Equal(sum, want[:]) {
		_ = os.Remove(b.path(h))
		return nil
	}
	b.mu.Lock()
	b.verified[h] = int64(len(data))
	b.mu.Unlock()
	return data
}

// rangedLength is storage.RangeLength with the object named in the error.
func rangedLength(h storage.Handle, size int64, length int, offset int64) (int64, error) {
	n, err := storage.RangeLength(size, length, offset)
	if err != nil {
		return 0, fmt.Errorf("load %v: %w", h, err)
	}
	return n, nil
}

// cachedRange returns a range of the cached copy of h; found is false when
// there is no usable copy. The first read of an entry in this process
// reads and verifies it whole; later reads read only the range.
func (b *Backend) cachedRange(h storage.Handle, length int, offset int64) (data []byte, found bool, err error) {
	b.mu.Lock()
	size, verified := b.verified[h]
	b.mu.Unlock()
	if !verified {
		whole := b.get(h)
		if whole == nil {
			return nil, false, nil
		}
		n, err := rangedLength(h, int64(len(whole)), length, offset)
		if err != nil {
			return nil, true, err
		}
		return whole[offset : offset+n], true, nil
	}
	n, err := rangedLength(h, size, length, offset)
	if err != nil {
		return nil, true, err
	}
	f, err := os.Open(b.path(h))
	if err != nil {
		b.forget(h)
		return nil, false, nil
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, offset); err != nil {
		b.forget(h)
		return nil, false, nil
	}
	return buf, true, nil
}

func (b *Backend) forget(h storage.Handle) {
	b.mu.Lock()
	delete(b.verified, h)
	b.mu.Unlock()
}

// put stores data as the cached content of h, best effort.
func (b *Backend) put(h storage.Handle, data []byte) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(b.dir, string(h.Type), ".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	sum := blake3.Sum256(data)
	_, err = f.Write(data)
	if err == nil {
		_, err = f.Write(sum[:])
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	b.forget(h)
	if err == nil {
		err = os.Rename(tmp, b.path(h))
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
}

// Save saves to the store and then keeps a copy of cacheable objects.
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if err := b.be.Save(ctx, h, data, opts); err != nil {
		return err
	}
	if b.cacheable(h) {
		b.put(h, data)
	}
	return nil
}

// Load serves cacheable objects from the cache, reading a missing one
// whole from the store first.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if !b.cacheable(h) {
		return b.be.Load(ctx, h, length, offset, fn)
	}
	data, found, err := b.cachedRange(h, length, offset)
	if err != nil {
		return err
	}
	if !found {
		whole, err := storage.LoadAll(ctx, b.be, h)
		if err != nil {
			return err
		}
		b.put(h, whole)
		n, err := rangedLength(h, int64(len(whole)), length, offset)
		if err != nil {
			return err
		}
		data = whole[offset : offset+n]
	}
	if err := fn(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("load %v: %w", h, err)
	}
	return nil
}

// Stat asks the store.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	return b.be.Stat(ctx, h)
}

// List asks the store and, after a complete listing of a cached type,
// drops cached objects the store no longer has.
func (b *Backend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	seen := map[string]struct{}{}
	err := b.be.List(ctx, t, func(fi storage.FileInfo) error {
		seen[fi.Name] = struct{}{}
		return fn(fi)
	})
	if err != nil {
		return err
	}
	switch t {
	case storage.IndexFile, storage.SnapshotFile, storage.PackFile:
		b.prune(t, seen)
	}
	return nil
}

func (b *Backend) prune(t storage.FileType, keep map[string]struct{}) {
	entries, err := os.ReadDir(filepath.Join(b.dir, string(t)))
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTemp {
				_ = os.Remove(filepath.Join(b.dir, string(t), name))
			}
			continue
		}
		if _, ok := keep[name]; !ok {
			_ = os.Remove(filepath.Join(b.dir, string(t), name))
		}
	}
}

// Remove removes from the store and the cache.
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	if err := b.be.Remove(ctx, h); err != nil {
		return err
	}
	if h.Valid() == nil {
		b.forget(h)
		_ = os.Remove(b.path(h))
	}
	return nil
}
