package streamtree_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/app/streamtree"
	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

func newRepo(t *testing.T) (*repository.Repository, *archiver.Archiver) {
	t.Helper()
	ctx := context.Background()
	r, err := repository.Init(ctx, mem.New(), "pw", repository.Options{KDF: crypto.WeakKDF(), ChunkMin: 4 << 10, ChunkAvg: 16 << 10, ChunkMax: 64 << 10, PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		t.Fatal(err)
	}
	cfg := r.Config()
	a, err := archiver.New(r, archiver.Options{Chunker: cfg.Chunker.Params()})
	if err != nil {
		t.Fatal(err)
	}
	return r, a
}

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestRoundTrip writes files from several goroutines at once, nested
// directories with metadata and a symlink, and reads them all back.
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	r, arch := newRepo(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	w := streamtree.NewWriter(arch, now, "tester")
	stop := arch.StartStreams(ctx)
	want := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("db/part%d/file%d.dump", i%3, i)
			data := randomBytes(uint64(i), 1000+i*50_000)
			n, err := w.WriteFile(ctx, p, bytes.NewReader(data), nil)
			if err != nil || n != int64(len(data)) {
				t.Errorf("%s: %d %v", p, n, err)
			}
			mu.Lock()
			want[p] = data
			mu.Unlock()
		}()
	}
	wg.Wait()
	mtime := now.Add(-time.Hour)
	if err := w.Mkdir("pgdata", &source.Meta{Mode: 0o750, ModTime: mtime, UID: 101, GID: 104, User: "postgres"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Symlink("pgdata/link", "/elsewhere", nil); err != nil {
		t.Fatal(err)
	}
	if err := source.WriteBytes(ctx, w, "empty", nil, nil); err != nil {
		t.Fatal(err)
	}
	want["empty"] = []byte{}
	// Conflicts and bad names are refused.
	for _, bad := range []string{"db", "/abs", "a/../b", "db/part0/file0.dump", ""} {
		if _, err := w.WriteFile(ctx, bad, strings.NewReader("x"), nil); err == nil {
			t.Errorf("WriteFile(%q) accepted", bad)
		}
	}
	if err := w.Mkdir("empty/sub", nil); err == nil {
		t.Error("a directory under a file was accepted")
	}
	root, err := w.Root(ctx)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Files() != int64(len(want)) {
		t.Errorf("Files() = %d, want %d", w.Files(), len(want))
	}

	rd := streamtree.NewReader(r, root)
	for p, data := range want {
		got, err := source.ReadFile(ctx, rd, p)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", p, len(got), err, len(data))
		}
	}
	ents, err := rd.List(ctx, "")
	if err != nil || len(ents) != 3 || ents[0].Name != "db" || ents[1].Name != "empty" || ents[2].Name != "pgdata" {
		t.Fatalf("root: %+v %v", ents, err)
	}
	if e := ents[2]; e.Type != source.TypeDir || e.Mode.Perm() != 0o750 || e.UID != 101 || e.User != "postgres" || !e.ModTime.Equal(mtime) {
		t.Errorf("pgdata: %+v", e)
	}
	if e, err := rd.Stat(ctx, "pgdata/link"); err != nil || e.Type != source.TypeSymlink || e.Target != "/elsewhere" {
		t.Errorf("link: %+v %v", e, err)
	}
	if e, err := rd.Stat(ctx, "db/part1/file4.dump"); err != nil || e.Size != int64(len(want["db/part1/file4.dump"])) || e.Mode.Perm() != 0o600 || e.User != "tester" {
		t.Errorf("file: %+v %v", e, err)
	}
	if _, err := rd.Open(ctx, "db"); err == nil {
		t.Error("opened a directory as a file")
	}
	if _, err := rd.Open(ctx, "nope"); !errors.Is(err, streamtree.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
}

// TestReaderClose: closing a reader part-way stops its read-ahead.
func TestReaderClose(t *testing.T) {
	ctx := context.Background()
	r, arch := newRepo(t)
	w := streamtree.NewWriter(arch, time.Now(), "")
	stop := arch.StartStreams(ctx)
	data := randomBytes(7, 2<<20)
	if _, err := w.WriteFile(ctx, "big", bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	root, err := w.Root(ctx)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rc, err := streamtree.NewReader(r, root).Open(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, data[:1000]) {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteFileSourceError: a failing reader fails the file and adds
// nothing.
func TestWriteFileSourceError(t *testing.T) {
	ctx := context.Background()
	_, arch := newRepo(t)
	w := streamtree.NewWriter(arch, time.Now(), "")
	stop := arch.StartStreams(ctx)
	defer stop()
	boom := errors.New("dump tool died")
	_, err := w.WriteFile(ctx, "x", io.MultiReader(bytes.NewReader(randomBytes(1, 100_000)), errReader{boom}), nil)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if w.Files() != 0 {
		t.Fatal("a failed file was added")
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
