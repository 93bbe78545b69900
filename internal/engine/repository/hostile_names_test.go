package repository_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// Objects with names shorter than an ID (a stray file in the repository
// directory, or planted by whoever can write to the store) are valid
// storage names; code that shortens names for messages used to slice
// name[:8] and panic on them.
func TestShortObjectNames(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, err := repository.Init(ctx, be, "pw", repository.Options{KDF: crypto.WeakKDF(), ChunkMin: 256, ChunkAvg: 1024, ChunkMax: 4096, PackSize: 1 << 20})
	check(t, err)
	for _, typ := range []storage.FileType{storage.IndexFile, storage.SnapshotFile, storage.PackFile} {
		check(t, be.Save(ctx, storage.Handle{Type: typ, Name: "x"}, []byte("junk"), storage.SaveOptions{}))
	}
	if err := r.LoadIndex(ctx, true); err == nil {
		t.Fatal("strict LoadIndex accepted a junk index file")
	}
	check(t, r.LoadIndex(ctx, false))
	if _, errs, err := snapshot.LoadAll(ctx, r); err != nil || errs["x"] == nil {
		t.Fatalf("junk snapshot: errs %v, err %v", errs, err)
	}
	r2, err := repository.Open(ctx, be, "pw", "")
	check(t, err)
	if _, err := maintenance.Prune(ctx, r2, maintenance.Options{}); err == nil {
		t.Fatal("prune ran with an unreadable snapshot")
	}

	// A working key stored under a short name: opening with it works, and
	// a config that does not open with its master key is an error.
	keys, err := r.List(ctx, storage.KeyFile)
	check(t, err)
	kb, err := storage.LoadAll(ctx, be, storage.Handle{Type: storage.KeyFile, Name: keys[0].Name})
	check(t, err)
	check(t, be.Remove(ctx, storage.Handle{Type: storage.KeyFile, Name: keys[0].Name}))
	check(t, be.Save(ctx, storage.Handle{Type: storage.KeyFile, Name: "kkkk"}, kb, storage.SaveOptions{}))
	r3, err := repository.Open(ctx, be, "pw", "")
	check(t, err)
	if err := r3.RemoveKey(ctx, "kkkk"); err == nil {
		t.Fatal("removed the key in use")
	}
	other := mem.New()
	_, err = repository.Init(ctx, other, "pw", repository.Options{KDF: crypto.WeakKDF(), ChunkMin: 256, ChunkAvg: 1024, ChunkMax: 4096, PackSize: 1 << 20})
	check(t, err)
	cfg, err := storage.LoadAll(ctx, other, storage.Handle{Type: storage.ConfigFile})
	check(t, err)
	check(t, be.Save(ctx, storage.Handle{Type: storage.ConfigFile}, cfg, storage.SaveOptions{}))
	if _, err := repository.Open(ctx, be, "pw", ""); !errors.Is(err, crypto.ErrUnauthenticated) {
		t.Fatalf("config of another repository: %v", err)
	}
}
