package archiver_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/checker"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/faulty"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

func writeTree(t *testing.T, dir string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		b := make([]byte, 1+rng.IntN(300<<10))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d", i)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func backup(ctx context.Context, r *repository.Repository, dir string) (snapshot.ID, error) {
	cfg := r.Config()
	a, err := archiver.New(r, archiver.Options{Chunker: cfg.Chunker.Params()})
	if err != nil {
		return snapshot.ID{}, err
	}
	root, err := a.Snapshot(ctx, []string{dir})
	if err == nil {
		err = r.Flush(ctx)
	}
	if err != nil {
		return snapshot.ID{}, err
	}
	sn := snapshot.New([]string{dir}, nil, "host", cfgTime())
	sn.Tree = root
	return snapshot.Save(ctx, r, sn)
}

// TestFullDisk: a store that runs out of space fails the backup with an
// error saying so, commits nothing, and leaves a repository that checks
// clean and takes the next backup.
func TestFullDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeTree(t, dir)
	store := mem.New()
	fb := faulty.New(store)
	r, err := repository.Init(ctx, fb, "pw", repository.Options{KDF: crypto.WeakKDF(), ChunkMin: 4 << 10, ChunkAvg: 16 << 10, ChunkMax: 64 << 10, PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		t.Fatal(err)
	}
	saves := 0
	fb.FailWhen(func(op faulty.Op, h storage.Handle) error {
		if op == faulty.OpSave && h.Type == storage.PackFile {
			saves++
			if saves > 1 {
				return fmt.Errorf("write pack: %w", storage.ErrNoSpace)
			}
		}
		return nil
	})
	_, err = backup(ctx, r, dir)
	if !errors.Is(err, storage.ErrNoSpace) {
		t.Fatalf("backup on a full store: err = %v, want ErrNoSpace", err)
	}
	infos, _ := r.List(ctx, storage.SnapshotFile)
	if len(infos) != 0 {
		t.Fatalf("a snapshot was committed by a failed backup")
	}
	fb.Reset()

	r2, err := repository.Open(ctx, store, "pw", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := checker.New(r2, checker.Options{ReadData: true}).Run(ctx)
	if err != nil || !res.OK() {
		t.Fatalf("check after a full disk: %v %v", err, res)
	}
	r3, err := repository.Open(ctx, store, "pw", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := r3.LoadIndex(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r3.AdoptOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := backup(ctx, r3, dir); err != nil {
		t.Fatalf("backup after space came back: %v", err)
	}
	r4, _ := repository.Open(ctx, store, "pw", "")
	res, err = checker.New(r4, checker.Options{ReadData: true}).Run(ctx)
	if err != nil || !res.OK() || res.Snapshots != 1 {
		t.Fatalf("final check: %v %+v", err, res)
	}
}

func cfgTime() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
