package retry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/faulty"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

var errTransient = errors.New("connection reset by peer")

// newTest wraps be with retries that do not sleep and records the waits.
func newTest(be storage.Backend, attempts int) (*Backend, *[]time.Duration) {
	var waits []time.Duration
	r := New(be, Options{Attempts: attempts, Base: time.Second, Max: 4 * time.Second})
	r.opts.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	return r, &waits
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return New(mem.New(), Options{})
	})
}

func TestTransientRetried(t *testing.T) {
	ctx := context.Background()
	f := faulty.New(mem.New())
	r, waits := newTest(f, 10)
	h := storage.Handle{Type: storage.IndexFile, Name: "a"}
	f.FailNth(faulty.OpSave, 1, errTransient)
	f.FailNth(faulty.OpSave, 2, errTransient)
	if err := r.Save(ctx, h, []byte("x"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := f.Calls(faulty.OpSave); got != 3 {
		t.Errorf("save calls = %d, want 3", got)
	}
	if len(*waits) != 2 {
		t.Fatalf("waits = %v, want 2", *waits)
	}
	// Full jitter: each wait lies in (0, backoff], backoff doubling up to Max.
	for i, w := range *waits {
		if limit := time.Second << i; w <= 0 || w > limit {
			t.Errorf("wait %d = %v, want in (0, %v]", i, w, limit)
		}
	}
	f.FailNth(faulty.OpStat, 1, errTransient)
	f.FailNth(faulty.OpRemove, 1, errTransient)
	if _, err := r.Stat(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(ctx, h); err != nil {
		t.Fatal(err)
	}
}

func TestPermanentNotRetried(t *testing.T) {
	ctx := context.Background()
	for _, perm := range []error{storage.ErrAuth, storage.ErrPermission, storage.ErrNoSpace, storage.Permanent(errors.New("bad request"))} {
		f := faulty.New(mem.New())
		r, waits := newTest(f, 10)
		f.FailNth(faulty.OpSave, 1, perm)
		err := r.Save(ctx, storage.Handle{Type: storage.IndexFile, Name: "a"}, []byte("x"), storage.SaveOptions{})
		if !errors.Is(err, perm) {
			t.Errorf("%v: err = %v", perm, err)
		}
		if f.Calls(faulty.OpSave) != 1 || len(*waits) != 0 {
			t.Errorf("%v: %d calls, %d waits; want 1, 0", perm, f.Calls(faulty.OpSave), len(*waits))
		}
	}
	// A missing object is an answer, not a failure.
	f := faulty.New(mem.New())
	r, _ := newTest(f, 10)
	if _, err := r.Stat(ctx, storage.Handle{Type: storage.IndexFile, Name: "nope"}); !errors.Is(err, storage.ErrNotExist) {
		t.Fatal(err)
	}
	if f.Calls(faulty.OpStat) != 1 {
		t.Errorf("stat calls = %d", f.Calls(faulty.OpStat))
	}
}

func TestGivesUp(t *testing.T) {
	f := faulty.New(mem.New())
	r, waits := newTest(f, 4)
	f.FailWhen(func(faulty.Op, storage.Handle) error { return errTransient })
	err := r.Remove(context.Background(), storage.Handle{Type: storage.IndexFile, Name: "a"})
	if !errors.Is(err, errTransient) {
		t.Fatal(err)
	}
	if f.Calls(faulty.OpRemove) != 4 || len(*waits) != 3 {
		t.Errorf("%d calls, %d waits; want 4, 3", f.Calls(faulty.OpRemove), len(*waits))
	}
	for i, w := range *waits {
		if limit := min(time.Second<<i, 4*time.Second); w > limit {
			t.Errorf("wait %d = %v > %v", i, w, limit)
		}
	}
	if want := "gave up after 4 attempts"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

func TestCancelStopsRetrying(t *testing.T) {
	f := faulty.New(mem.New())
	ctx, cancel := context.WithCancel(context.Background())
	r := New(f, Options{Attempts: 100, Base: time.Hour})
	f.FailWhen(func(faulty.Op, storage.Handle) error { cancel(); return errTransient })
	start := time.Now()
	err := r.Remove(ctx, storage.Handle{Type: storage.IndexFile, Name: "a"})
	if err == nil || time.Since(start) > time.Minute {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	if f.Calls(faulty.OpRemove) != 1 {
		t.Errorf("remove calls = %d", f.Calls(faulty.OpRemove))
	}
}

func TestLoadReadFailureRetried(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	f := faulty.New(m)
	r, _ := newTest(f, 10)
	h := storage.Handle{Type: storage.PackFile, Name: "p"}
	data := bytes.Repeat([]byte("0123456789"), 1000)
	if err := m.Save(ctx, h, data, storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	// The store breaks off midway through the first read.
	f.RetryLoad(faulty.Any)
	var calls int
	var got []byte
	err := r.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		calls++
		var err error
		got, err = io.ReadAll(rd)
		return err
	})
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("err = %v, %d bytes", err, len(got))
	}
	if calls < 2 {
		t.Errorf("callback ran %d times, want a retry", calls)
	}
}

func TestLoadCallbackErrorNotRetried(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	f := faulty.New(m)
	r, waits := newTest(f, 10)
	h := storage.Handle{Type: storage.PackFile, Name: "p"}
	if err := m.Save(ctx, h, []byte("data"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	own := errors.New("blob does not decrypt")
	var calls int
	err := r.Load(ctx, h, 0, 0, func(rd io.Reader) error { calls++; return own })
	if !errors.Is(err, own) || calls != 1 || len(*waits) != 0 {
		t.Fatalf("err = %v, %d calls, %d waits", err, calls, len(*waits))
	}
}

// flakyList fails a listing after it has handed out some names.
type flakyList struct {
	storage.Backend
	fails atomic.Int32
	after int
}

func (b *flakyList) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	n := 0
	return b.Backend.List(ctx, t, func(fi storage.FileInfo) error {
		if n == b.after && b.fails.Add(-1) >= 0 {
			return errTransient
		}
		n++
		return fn(fi)
	})
}

func TestListResumesWithoutDuplicates(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	for i := 0; i < 20; i++ {
		if err := m.Save(ctx, storage.Handle{Type: storage.IndexFile, Name: fmt.Sprintf("i%02d", i)}, []byte{byte(i)}, storage.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fl := &flakyList{Backend: m, after: 7}
	fl.fails.Store(2)
	r, waits := newTest(fl, 10)
	seen := map[string]int{}
	if err := r.List(ctx, storage.IndexFile, func(fi storage.FileInfo) error { seen[fi.Name]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 20 {
		t.Errorf("listed %d names, want 20", len(seen))
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", name, n)
		}
	}
	if len(*waits) != 2 {
		t.Errorf("waits = %d, want 2", len(*waits))
	}
	// An error of the callback's own ends the listing at once.
	own := errors.New("stop")
	err := r.List(ctx, storage.IndexFile, func(storage.FileInfo) error { return own })
	if !errors.Is(err, own) || len(*waits) != 2 {
		t.Fatalf("err = %v, waits %d", err, len(*waits))
	}
}

// lostReply stores the object but reports a transient failure, as when a
// connection drops after the store has committed the write.
type lostReply struct {
	storage.Backend
	lose atomic.Int32
}

func (b *lostReply) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	err := b.Backend.Save(ctx, h, data, opts)
	if err == nil && b.lose.Add(-1) >= 0 {
		return errTransient
	}
	return err
}

func TestConditionalCreateLostReply(t *testing.T) {
	ctx := context.Background()
	lr := &lostReply{Backend: mem.New()}
	r, _ := newTest(lr, 10)
	h := storage.Handle{Type: storage.MaintFile, Name: "lease"}
	lr.lose.Store(1)
	if err := r.Save(ctx, h, []byte("mine"), storage.SaveOptions{IfNotExists: true}); err != nil {
		t.Fatalf("retried conditional create of our own bytes: %v", err)
	}
	// Someone else's object is still a conflict.
	if err := r.Save(ctx, h, []byte("theirs"), storage.SaveOptions{IfNotExists: true}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
	lr.lose.Store(1)
	h2 := storage.Handle{Type: storage.MaintFile, Name: "other"}
	if err := lr.Backend.Save(ctx, h2, []byte("theirs"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Save(ctx, h2, []byte("mine"), storage.SaveOptions{IfNotExists: true}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
}
