package limit

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/faulty"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return New(mem.New(), Options{Connections: 2, UploadBytes: 64 << 20, DownloadBytes: 64 << 20})
	})
}

func TestNoLimitsIsIdentity(t *testing.T) {
	m := mem.New()
	if New(m, Options{}) != storage.Backend(m) {
		t.Fatal("New without limits wrapped the backend")
	}
}

// gauge counts operations in flight.
type gauge struct {
	storage.Backend
	cur, peak atomic.Int32
}

func (g *gauge) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	n := g.cur.Add(1)
	defer g.cur.Add(-1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(5 * time.Millisecond)
	return g.Backend.Stat(ctx, h)
}

func TestConnectionsBounded(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	h := storage.Handle{Type: storage.IndexFile, Name: "x"}
	if err := m.Save(ctx, h, []byte("x"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	g := &gauge{Backend: m}
	b := New(g, Options{Connections: 3})
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.Stat(ctx, h); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if p := g.peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak concurrency %d, want 2..3", p)
	}
}

func TestNestedCallInListDoesNotDeadlock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := mem.New()
	for _, n := range []string{"a", "b"} {
		if err := m.Save(ctx, storage.Handle{Type: storage.KeyFile, Name: n}, []byte(n), storage.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	b := New(m, Options{Connections: 1})
	err := b.List(ctx, storage.KeyFile, func(fi storage.FileInfo) error {
		_, err := storage.LoadAll(ctx, b, storage.Handle{Type: storage.KeyFile, Name: fi.Name})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRates(t *testing.T) {
	// Only that data is held back is checked, never how fast it moves:
	// 3 MiB at 1 MiB/s cannot finish within 300 ms on any machine.
	ctx := context.Background()
	f := faulty.New(mem.New())
	b := New(f, Options{UploadBytes: 1 << 20, DownloadBytes: 1 << 20}).(*Backend)
	data := bytes.Repeat([]byte{7}, 3<<20)
	h := storage.Handle{Type: storage.PackFile, Name: "p"}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := b.Save(cctx, h, data, storage.SaveOptions{}); err == nil {
		t.Fatal("3 MiB saved within 300 ms at 1 MiB/s")
	}
	if f.Calls(faulty.OpSave) != 0 {
		t.Fatal("the save reached the store before its budget was paid")
	}
	b.up.SetLimit(1 << 40)
	if err := b.Save(ctx, h, data, storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	// Reading is paced as the callback reads.
	cctx2, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	err := b.Load(cctx2, h, 0, 0, func(rd io.Reader) error {
		_, err := io.Copy(io.Discard, rd)
		return err
	})
	if err == nil {
		t.Fatal("3 MiB read within 300 ms at 1 MiB/s")
	}
}
