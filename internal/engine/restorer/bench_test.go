package restorer_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// BenchmarkRestore restores a few large or many small files from an
// in-memory repository into a fresh directory per op: the write path
// (create, write at offsets, metadata, rename) that the filesystem
// interface sits on, and with read-ahead (as for a remote repository)
// the path of ranges of packs decoded into blobs. Allocations per op are
// the number to watch.
func BenchmarkRestore(b *testing.B) {
	for _, c := range []struct {
		name        string
		files, size int
		readahead   bool
	}{
		{"large", 4, 16 << 20, false},
		{"small", 1000, 4 << 10, false},
		{"large-readahead", 4, 16 << 20, true},
		{"small-readahead", 1000, 4 << 10, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			r, err := repository.Init(ctx, mem.New(), "pw", repository.Options{KDF: crypto.WeakKDF(), Compression: "none"})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.LoadIndex(ctx, false); err != nil {
				b.Fatal(err)
			}
			a, err := archiver.New(r, archiver.Options{Chunker: r.Config().Chunker.Params()})
			if err != nil {
				b.Fatal(err)
			}
			stop := a.StartStreams(ctx)
			rng := rand.NewChaCha8([32]byte{2})
			buf := make([]byte, c.size)
			var nodes []*tree.Node
			for i := 0; i < c.files; i++ {
				rng.Read(buf)
				ids, n, err := a.SaveReader(ctx, bytes.NewReader(buf))
				if err != nil {
					b.Fatal(err)
				}
				nodes = append(nodes, &tree.Node{Name: tree.RawString(fmt.Sprintf("f%04d", i)), Type: tree.TypeFile, Mode: 0o640, ModTime: time.Unix(1700000000, 0), Size: uint64(n), Content: ids})
			}
			root, err := a.SaveTree(ctx, &tree.Tree{Nodes: nodes})
			if err != nil {
				b.Fatal(err)
			}
			stop()
			if err := r.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			base := b.TempDir()
			b.SetBytes(int64(c.files) * int64(c.size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dst, err := os.MkdirTemp(base, "t")
				if err != nil {
					b.Fatal(err)
				}
				res := restorer.New(r, restorer.Options{NoOwner: true, Readahead: c.readahead, SpillDir: base})
				if err := res.Restore(ctx, root, "/", dst); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := os.RemoveAll(dst); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
