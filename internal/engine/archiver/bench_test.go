package archiver_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// benchTree writes files of random bytes below dir and returns their
// total size.
func benchTree(b *testing.B, dir string, files, size int) int64 {
	b.Helper()
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, size)
	for i := 0; i < files; i++ {
		rng.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return int64(files) * int64(size)
}

// BenchmarkSnapshot backs up a directory of a few large or many small
// files from the page cache, into a repository that already holds every
// blob: what is left is the read path (open, read, chunk, hash) that the
// filesystem interface sits on. Allocations per op are the number to
// watch: the OS path must not allocate per block.
func BenchmarkSnapshot(b *testing.B) {
	for _, c := range []struct {
		name        string
		files, size int
	}{
		{"large", 4, 16 << 20},
		{"small", 1000, 4 << 10},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			total := benchTree(b, dir, c.files, c.size)
			r, err := repository.Init(ctx, mem.New(), "pw", repository.Options{KDF: crypto.WeakKDF(), Compression: "none"})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.LoadIndex(ctx, false); err != nil {
				b.Fatal(err)
			}
			cfg := r.Config()
			run := func() {
				a, err := archiver.New(r, archiver.Options{Chunker: cfg.Chunker.Params()})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := a.Snapshot(ctx, []string{dir}); err != nil {
					b.Fatal(err)
				}
			}
			run() // store every blob once
			if err := r.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(total)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run()
			}
		})
	}
}
