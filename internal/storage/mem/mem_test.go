package mem_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Backend { return mem.New() })
}

func TestConformanceAppendOnly(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Backend {
		be := mem.New()
		be.SetAppendOnly(true)
		return be
	})
}

func TestConformanceFakeClock(t *testing.T) {
	start := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	storagetest.RunWithOptions(t, func(*testing.T) storage.Backend {
		var ticks atomic.Int64
		return mem.NewWithClock(func() time.Time {
			return start.Add(time.Duration(ticks.Add(1)) * time.Second)
		})
	}, storagetest.Options{SkipModTime: true})
}

func TestClock(t *testing.T) {
	now := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	var cur atomic.Pointer[time.Time]
	cur.Store(&now)
	be := mem.NewWithClock(func() time.Time { return *cur.Load() })
	h := storage.Handle{Type: storage.SnapshotFile, Name: "s1"}
	if err := be.Save(t.Context(), h, []byte("x"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	cur.Store(&later)
	fi, err := be.Stat(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime.Equal(now) {
		t.Errorf("Stat ModTime = %v, want the clock's %v at Save", fi.ModTime, now)
	}
	err = be.List(t.Context(), storage.SnapshotFile, func(fi storage.FileInfo) error {
		if !fi.ModTime.Equal(now) {
			t.Errorf("List ModTime = %v, want %v", fi.ModTime, now)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Overwriting takes the clock's new time.
	if err := be.Save(t.Context(), h, []byte("x"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, _ := be.Stat(t.Context(), h); !fi.ModTime.Equal(later) {
		t.Errorf("ModTime after overwrite = %v, want %v", fi.ModTime, later)
	}
}

func TestAppendOnlyToggle(t *testing.T) {
	ctx := t.Context()
	be := mem.New()
	h := storage.Handle{Type: storage.IndexFile, Name: "i1"}
	if err := be.Save(ctx, h, []byte("v1"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	be.SetAppendOnly(true)
	if !be.Features().AppendOnly {
		t.Fatal("Features().AppendOnly = false after SetAppendOnly(true)")
	}
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"remove existing", func() error { return be.Remove(ctx, h) }, storage.ErrPermission},
		{"remove missing", func() error { return be.Remove(ctx, storage.Handle{Type: storage.IndexFile, Name: "nope"}) }, storage.ErrPermission},
		{"overwrite", func() error { return be.Save(ctx, h, []byte("v2"), storage.SaveOptions{}) }, storage.ErrPermission},
		{"conditional create of existing", func() error { return be.Save(ctx, h, []byte("v2"), storage.SaveOptions{IfNotExists: true}) }, storage.ErrExists},
		{"save new", func() error {
			return be.Save(ctx, storage.Handle{Type: storage.IndexFile, Name: "i2"}, []byte("x"), storage.SaveOptions{})
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if got, err := storage.LoadAll(ctx, be, h); err != nil || string(got) != "v1" {
		t.Fatalf("LoadAll = %q, %v; want v1", got, err)
	}
	be.SetAppendOnly(false)
	if be.Features().AppendOnly {
		t.Fatal("Features().AppendOnly = true after SetAppendOnly(false)")
	}
	if err := be.Remove(ctx, h); err != nil {
		t.Fatalf("Remove after SetAppendOnly(false): %v", err)
	}
}

func TestListCallbackMayUseBackend(t *testing.T) {
	ctx := t.Context()
	be := mem.New()
	for _, name := range []string{"a", "b", "c"} {
		if err := be.Save(ctx, storage.Handle{Type: storage.KeyFile, Name: name}, nil, storage.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	err := be.List(ctx, storage.KeyFile, func(fi storage.FileInfo) error {
		return be.Remove(ctx, storage.Handle{Type: storage.KeyFile, Name: fi.Name})
	})
	if err != nil {
		t.Fatalf("List removing every object: %v", err)
	}
	n := 0
	_ = be.List(ctx, storage.KeyFile, func(storage.FileInfo) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d keys left, want 0", n)
	}
}
