package repository_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

// TestStreamIndexFilesBoundsWhatIsInFlight: index files are decoded whole,
// so the stream holds at most IndexBytesInFlight of them (by listed size)
// between reading one and handing it on, however many it could read at
// once; a file larger than that still goes (alone); and an error from
// the consumer stops the stream without leaving anything waiting.
func TestStreamIndexFilesBoundsWhatIsInFlight(t *testing.T) {
	ctx := context.Background()
	w := newCommitWorld(t)
	for i := range 12 {
		r := w.open(nil)
		_, _, err := r.SaveBlob(ctx, pack.DataBlob, []byte(fmt.Sprintf("blob %d", i)))
		check(t, err)
		check(t, r.Flush(ctx))
	}
	loads := &storagetest.CountLoads{Backend: w.store, Type: storage.IndexFile}
	r := w.open(loads)
	infos, err := r.List(ctx, storage.IndexFile)
	check(t, err)
	if len(infos) != 12 {
		t.Fatalf("%d index files, want 12", len(infos))
	}

	// Listed at 3 MiB each: two fit.
	for i := range infos {
		infos[i].Size = 3 << 20
	}
	var handed, most int64
	var mu sync.Mutex
	err = r.StreamIndexFiles(ctx, infos, func(name string, f *index.File, err error) error {
		check(t, err)
		time.Sleep(5 * time.Millisecond) // let the readers run ahead
		mu.Lock()
		defer mu.Unlock()
		handed++
		most = max(most, loads.Count()-handed)
		return nil
	})
	check(t, err)
	if handed != 12 {
		t.Fatalf("%d files handed on, want 12", handed)
	}
	if want := int64(repositoryRoom(3 << 20)); most >= want {
		t.Errorf("%d files read and not yet handed on at once, want fewer than %d", most+1, want+1)
	}

	// Larger than the room: one at a time, all of them.
	for i := range infos {
		infos[i].Size = 100 << 20
	}
	n := 0
	check(t, r.StreamIndexFiles(ctx, infos, func(string, *index.File, error) error { n++; return nil }))
	if n != 12 {
		t.Fatalf("%d files of 100 MiB handed on, want 12", n)
	}

	// The consumer fails at the third: the stream stops with its error.
	stop := errors.New("enough")
	n = 0
	err = r.StreamIndexFiles(ctx, infos, func(string, *index.File, error) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("stream after the consumer's error: %v after %d files, want %v after 3", err, n, stop)
	}
}

// repositoryRoom is how many files of size fit in the stream's room.
func repositoryRoom(size int64) int64 { return max(1, repository.IndexBytesInFlight/size) }
