package cache

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/faulty"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		b, err := New(mem.New(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		// Cache every pack the suite uses, to run the ranged loads
		// through the cache too.
		for _, n := range []string{"ranged", "rt-pack", "mi-present"} {
			b.HintMetadata(storage.Handle{Type: storage.PackFile, Name: n})
		}
		return b
	})
}

func setup(t *testing.T) (*Backend, *faulty.Backend) {
	t.Helper()
	f := faulty.New(mem.New())
	b, err := New(f, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return b, f
}

func TestSecondLoadIsLocal(t *testing.T) {
	ctx := context.Background()
	b, f := setup(t)
	idx := storage.Handle{Type: storage.IndexFile, Name: "i1"}
	pk := storage.Handle{Type: storage.PackFile, Name: "p1"}
	data := bytes.Repeat([]byte("tree"), 1000)
	// An object saved through the cache is never downloaded.
	if err := b.Save(ctx, idx, data, storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := storage.LoadAll(ctx, b, idx); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load: %v", err)
	}
	if n := f.Calls(faulty.OpLoad); n != 0 {
		t.Errorf("loads from the store = %d, want 0", n)
	}
	// A pack is cached once hinted; a range read fetches it whole once.
	if err := f.Unwrap().Save(ctx, pk, data, storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	b.HintMetadata(pk)
	for i := 0; i < 3; i++ {
		var got []byte
		err := b.Load(ctx, pk, 4, 8, func(rd io.Reader) error {
			var err error
			got, err = io.ReadAll(rd)
			return err
		})
		if err != nil || !bytes.Equal(got, data[8:12]) {
			t.Fatalf("ranged load: %v, %q", err, got)
		}
	}
	if n := f.Calls(faulty.OpLoad); n != 1 {
		t.Errorf("loads from the store = %d, want 1", n)
	}
}

func TestDamagedEntryRefetched(t *testing.T) {
	ctx := context.Background()
	b, f := setup(t)
	h := storage.Handle{Type: storage.SnapshotFile, Name: "s1"}
	data := []byte("snapshot bytes")
	if err := b.Save(ctx, h, data, storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(b.Dir(), "snapshots", "s1")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	raw[0] ^= 1
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := storage.LoadAll(ctx, b, h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load after damage: %v, %q", err, got)
	}
	if n := f.Calls(faulty.OpLoad); n != 1 {
		t.Errorf("loads from the store = %d, want 1", n)
	}
	// Truncated to less than its checksum.
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := storage.LoadAll(ctx, b, h); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("load after truncation: %v, %q", err, got)
	}
}

func TestListDropsRemoved(t *testing.T) {
	ctx := context.Background()
	b, f := setup(t)
	for _, n := range []string{"a", "b"} {
		if err := b.Save(ctx, storage.Handle{Type: storage.IndexFile, Name: n}, []byte(n), storage.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Another host removes "a" from the store.
	if err := f.Unwrap().Remove(ctx, storage.Handle{Type: storage.IndexFile, Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := b.List(ctx, storage.IndexFile, func(storage.FileInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.Dir(), "index", "a")); !os.IsNotExist(err) {
		t.Errorf("cached copy of a removed object survived a listing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(b.Dir(), "index", "b")); err != nil {
		t.Errorf("cached copy of a kept object: %v", err)
	}
}

func TestUncachedTypesPassThrough(t *testing.T) {
	ctx := context.Background()
	b, f := setup(t)
	for _, h := range []storage.Handle{{Type: storage.KeyFile, Name: "k"}, {Type: storage.ConfigFile}, {Type: storage.PackFile, Name: "data"}} {
		if err := b.Save(ctx, h, []byte("x"), storage.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if _, err := storage.LoadAll(ctx, b, h); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := f.Calls(faulty.OpLoad); n != 6 {
		t.Errorf("loads from the store = %d, want 6", n)
	}
}
