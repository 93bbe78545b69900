package faulty_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/faulty"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Backend { return faulty.New(mem.New()) })
}

// TestConformanceRetryLoad checks that the suite's own Load callbacks are
// idempotent, as the contract asks of every caller.
func TestConformanceRetryLoad(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Backend {
		be := faulty.New(mem.New())
		be.RetryLoad(faulty.Any)
		return be
	})
}

var (
	pack  = storage.Handle{Type: storage.PackFile, Name: "ab12"}
	index = storage.Handle{Type: storage.IndexFile, Name: "i1"}
	data  = []byte("0123456789abcdefghij")
)

// newBackend returns a faulty backend over a mem backend holding pack and
// index, with the counters at zero.
func newBackend(t *testing.T) (*faulty.Backend, *mem.Backend) {
	t.Helper()
	inner := mem.New()
	be := faulty.New(inner)
	for _, h := range []storage.Handle{pack, index} {
		if err := be.Save(t.Context(), h, data, storage.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	be.ResetCounters()
	return be, inner
}

// do runs one operation of the given kind on h and returns its error.
func do(ctx context.Context, be storage.Backend, op faulty.Op, h storage.Handle) error {
	switch op {
	case faulty.OpSave:
		return be.Save(ctx, h, data, storage.SaveOptions{})
	case faulty.OpLoad:
		_, err := storage.LoadAll(ctx, be, h)
		return err
	case faulty.OpStat:
		_, err := be.Stat(ctx, h)
		return err
	case faulty.OpList:
		return be.List(ctx, h.Type, func(storage.FileInfo) error { return nil })
	case faulty.OpRemove:
		return be.Remove(ctx, h)
	}
	return fmt.Errorf("unknown op %v", op)
}

var allOps = []faulty.Op{faulty.OpSave, faulty.OpLoad, faulty.OpStat, faulty.OpList, faulty.OpRemove}

func TestFailNth(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		op      faulty.Op
		n       int
		err     error
		wantErr error
	}{
		{faulty.OpSave, 1, errBoom, errBoom},
		{faulty.OpLoad, 3, errBoom, errBoom},
		{faulty.OpStat, 2, storage.ErrNotExist, storage.ErrNotExist},
		{faulty.OpList, 1, nil, faulty.ErrInjected},
		{faulty.OpRemove, 2, storage.ErrPermission, storage.ErrPermission},
		{faulty.OpSave, 0, errBoom, errBoom}, // n < 1 counts as 1
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v/%d", tc.op, tc.n), func(t *testing.T) {
			be, _ := newBackend(t)
			// Calls before arming do not count towards n.
			if err := do(t.Context(), be, tc.op, index); err != nil {
				t.Fatal(err)
			}
			be.FailNth(tc.op, tc.n, tc.err)
			for i := 1; i <= max(tc.n, 1)+2; i++ {
				err := do(t.Context(), be, tc.op, index)
				if i == max(tc.n, 1) {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("call %d = %v, want %v", i, err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("call %d = %v, want nil", i, err)
				}
			}
			if got := be.Injected(tc.op); got != 1 {
				t.Errorf("Injected(%v) = %d, want 1", tc.op, got)
			}
			if got, want := be.Calls(tc.op), max(tc.n, 1)+3; got != want {
				t.Errorf("Calls(%v) = %d, want %d", tc.op, got, want)
			}
			for _, other := range allOps {
				if other != tc.op && be.Injected(other) != 0 {
					t.Errorf("Injected(%v) = %d, want 0", other, be.Injected(other))
				}
			}
		})
	}
}

func TestFailNthDoesNotReachStore(t *testing.T) {
	be, inner := newBackend(t)
	be.FailNth(faulty.OpSave, 1, nil)
	h := storage.Handle{Type: storage.KeyFile, Name: "k"}
	if err := be.Save(t.Context(), h, data, storage.SaveOptions{}); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("Save = %v, want ErrInjected", err)
	}
	if _, err := inner.Stat(t.Context(), h); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("failed Save reached the store: Stat = %v", err)
	}
}

func TestFailWhen(t *testing.T) {
	be, _ := newBackend(t)
	errOffline := errors.New("offline")
	be.FailWhen(func(op faulty.Op, h storage.Handle) error {
		if h.Type == storage.PackFile && op != faulty.OpStat {
			return errOffline
		}
		return nil
	})
	tests := []struct {
		op   faulty.Op
		h    storage.Handle
		fail bool
	}{
		{faulty.OpLoad, pack, true},
		{faulty.OpList, storage.Handle{Type: storage.PackFile}, true},
		{faulty.OpStat, pack, false},
		{faulty.OpLoad, index, false},
		{faulty.OpSave, index, false},
		{faulty.OpRemove, pack, true},
	}
	for _, tc := range tests {
		err := do(t.Context(), be, tc.op, tc.h)
		if got := errors.Is(err, errOffline); got != tc.fail {
			t.Errorf("%v %v = %v, want failure %v", tc.op, tc.h, err, tc.fail)
		}
	}
	be.FailWhen(nil)
	if err := do(t.Context(), be, faulty.OpLoad, pack); err != nil {
		t.Errorf("Load after FailWhen(nil) = %v", err)
	}
}

func TestShortRead(t *testing.T) {
	tests := []struct {
		name     string
		keep     int
		length   int
		offset   int64
		wantRead int
	}{
		{"half", 10, 0, 0, 10},
		{"nothing", 0, 0, 0, 0},
		{"negative keep", -5, 0, 0, 0},
		{"keep covers all", 100, 0, 0, len(data)},
		{"ranged", 3, 5, 2, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be, _ := newBackend(t)
			be.ShortRead(faulty.Is(pack), tc.keep)
			var got []byte
			err := be.Load(t.Context(), pack, tc.length, tc.offset, func(rd io.Reader) error {
				b, err := io.ReadAll(rd)
				got = b
				return err
			})
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("Load = %v, want io.ErrUnexpectedEOF", err)
			}
			if !bytes.Equal(got, data[tc.offset:tc.offset+int64(tc.wantRead)]) {
				t.Errorf("read %q before the error, want %q", got, data[tc.offset:tc.offset+int64(tc.wantRead)])
			}
			if _, err := storage.LoadAll(t.Context(), be, index); err != nil {
				t.Errorf("Load of an unmatched object = %v", err)
			}
			if be.Injected(faulty.OpLoad) != 1 {
				t.Errorf("Injected(load) = %d, want 1", be.Injected(faulty.OpLoad))
			}
		})
	}
}

func TestShortReadOnce(t *testing.T) {
	be, _ := newBackend(t)
	be.ShortRead(faulty.Once(faulty.OfType(storage.PackFile)), 4)
	if _, err := storage.LoadAll(t.Context(), be, index); err != nil {
		t.Fatalf("Load of index: %v", err)
	}
	if _, err := storage.LoadAll(t.Context(), be, pack); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("first Load of pack = %v, want io.ErrUnexpectedEOF", err)
	}
	if got, err := storage.LoadAll(t.Context(), be, pack); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("second Load of pack = %q, %v; want the data", got, err)
	}
}

func TestFlipBit(t *testing.T) {
	tests := []struct {
		name   string
		bit    int64
		length int
		offset int64
		byteAt int // index into the loaded range that differs
		mask   byte
	}{
		{"first bit", 0, 0, 0, 0, 0x01},
		{"bit 13", 13, 0, 0, 1, 0x20},
		{"last bit", int64(len(data))*8 - 1, 0, 0, len(data) - 1, 0x80},
		{"modulo size", int64(len(data))*8 + 2, 0, 0, 0, 0x04},
		{"negative", -1, 0, 0, len(data) - 1, 0x80},
		{"ranged", 9, 4, 5, 1, 0x02},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be, inner := newBackend(t)
			be.FlipBit(faulty.OfType(storage.PackFile), tc.bit)
			var got []byte
			err := be.Load(t.Context(), pack, tc.length, tc.offset, func(rd io.Reader) error {
				b, err := io.ReadAll(rd)
				got = b
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			want := bytes.Clone(data[tc.offset:])
			if tc.length > 0 {
				want = want[:tc.length]
			}
			want[tc.byteAt] ^= tc.mask
			if !bytes.Equal(got, want) {
				t.Errorf("loaded %q, want %q", got, want)
			}
			flipped := 0
			for i := range got {
				flipped += bits.OnesCount8(got[i] ^ data[int(tc.offset)+i])
			}
			if flipped != 1 {
				t.Errorf("%d bits flipped, want 1", flipped)
			}
			// The store itself is untouched.
			if stored, _ := storage.LoadAll(t.Context(), inner, pack); !bytes.Equal(stored, data) {
				t.Errorf("stored data changed to %q", stored)
			}
		})
	}
	t.Run("empty object", func(t *testing.T) {
		be, _ := newBackend(t)
		h := storage.Handle{Type: storage.PackFile, Name: "empty"}
		if err := be.Save(t.Context(), h, nil, storage.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		be.FlipBit(faulty.Any, 3)
		if got, err := storage.LoadAll(t.Context(), be, h); err != nil || len(got) != 0 {
			t.Errorf("LoadAll of an empty object = %q, %v", got, err)
		}
	})
}

func TestRetryLoad(t *testing.T) {
	be, _ := newBackend(t)
	be.RetryLoad(faulty.Is(pack))

	calls := 0
	var got []byte
	err := be.Load(t.Context(), pack, 0, 0, func(rd io.Reader) error {
		calls++
		b, err := io.ReadAll(rd)
		got = b
		return err
	})
	if err != nil || calls != 2 || !bytes.Equal(got, data) {
		t.Errorf("idempotent callback: err %v, %d calls, got %q; want nil, 2 calls, the data", err, calls, got)
	}

	// A callback that ignores read errors keeps the broken first read.
	calls = 0
	err = be.Load(t.Context(), pack, 0, 0, func(rd io.Reader) error {
		calls++
		got, _ = io.ReadAll(rd)
		return nil
	})
	if err != nil || calls != 1 || len(got) != len(data)/2 {
		t.Errorf("error-ignoring callback: err %v, %d calls, %d bytes; want nil, 1 call, %d bytes", err, calls, len(got), len(data)/2)
	}
}

func TestLatency(t *testing.T) {
	be, _ := newBackend(t)
	const d = 30 * time.Millisecond
	be.SetLatency(d, faulty.OpStat)
	start := time.Now()
	if _, err := be.Stat(t.Context(), pack); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < d {
		t.Errorf("Stat took %v, want at least %v", el, d)
	}

	be.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	start = time.Now()
	for _, op := range allOps {
		if err := do(ctx, be, op, index); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v with an hour's latency and a 10ms deadline = %v, want DeadlineExceeded", op, err)
		}
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("latency ignored the context: took %v", el)
	}

	be.SetLatency(0)
	if _, err := be.Stat(t.Context(), pack); err != nil {
		t.Errorf("Stat after SetLatency(0): %v", err)
	}
}

func TestCrashAfter(t *testing.T) {
	be, inner := newBackend(t)
	be.CrashAfter(2)
	key := func(i int) storage.Handle { return storage.Handle{Type: storage.KeyFile, Name: fmt.Sprintf("k%d", i)} }
	for i := range 2 {
		if be.Crashed() {
			t.Fatalf("Crashed() before save %d", i)
		}
		if err := be.Save(t.Context(), key(i), data, storage.SaveOptions{}); err != nil {
			t.Fatalf("save %d before the crash: %v", i, err)
		}
	}
	if !be.Crashed() {
		t.Fatal("Crashed() = false after the promised saves")
	}
	if err := be.Save(t.Context(), key(2), data, storage.SaveOptions{}); !errors.Is(err, faulty.ErrCrashed) {
		t.Errorf("Save after the crash = %v, want ErrCrashed", err)
	}
	if err := be.Remove(t.Context(), pack); !errors.Is(err, faulty.ErrCrashed) {
		t.Errorf("Remove after the crash = %v, want ErrCrashed", err)
	}
	for _, op := range []faulty.Op{faulty.OpLoad, faulty.OpStat, faulty.OpList} {
		if err := do(t.Context(), be, op, key(0)); err != nil {
			t.Errorf("%v after the crash = %v, want it to pass", op, err)
		}
	}
	if _, err := inner.Stat(t.Context(), key(2)); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("a Save after the crash reached the store: %v", err)
	}
	if _, err := inner.Stat(t.Context(), pack); err != nil {
		t.Errorf("a Remove after the crash reached the store: %v", err)
	}
	if got := be.Injected(faulty.OpSave) + be.Injected(faulty.OpRemove); got != 2 {
		t.Errorf("injected %d faults, want 2", got)
	}

	be.Reset()
	if be.Crashed() {
		t.Fatal("Crashed() after Reset")
	}
	if err := be.Save(t.Context(), key(2), data, storage.SaveOptions{}); err != nil {
		t.Errorf("Save after Reset: %v", err)
	}
}

func TestCrashAfterCountsOnlySuccesses(t *testing.T) {
	be, _ := newBackend(t)
	be.CrashAfter(1)
	be.FailNth(faulty.OpSave, 1, nil)
	h := storage.Handle{Type: storage.KeyFile, Name: "k"}
	if err := be.Save(t.Context(), h, data, storage.SaveOptions{}); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("first Save = %v, want ErrInjected", err)
	}
	if err := be.Save(t.Context(), index, data, storage.SaveOptions{IfNotExists: true}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("conditional Save of existing = %v, want ErrExists", err)
	}
	if be.Crashed() {
		t.Fatal("crashed after failed saves only")
	}
	if err := be.Save(t.Context(), h, data, storage.SaveOptions{}); err != nil {
		t.Fatalf("third Save: %v", err)
	}
	if !be.Crashed() {
		t.Fatal("not crashed after one successful save")
	}
}

func TestCrashAfterZero(t *testing.T) {
	be, _ := newBackend(t)
	be.CrashAfter(0)
	if !be.Crashed() {
		t.Fatal("CrashAfter(0) did not crash at once")
	}
	if err := be.Save(t.Context(), index, data, storage.SaveOptions{}); !errors.Is(err, faulty.ErrCrashed) {
		t.Errorf("Save = %v, want ErrCrashed", err)
	}
}

func TestCrashAfterConcurrent(t *testing.T) {
	const n, savers = 5, 20
	be, inner := newBackend(t)
	be.CrashAfter(n)
	errs := make([]error, savers)
	var wg sync.WaitGroup
	for i := range savers {
		wg.Go(func() {
			errs[i] = be.Save(t.Context(), storage.Handle{Type: storage.SessionFile, Name: fmt.Sprintf("s%d", i)}, data, storage.SaveOptions{})
		})
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, faulty.ErrCrashed):
			t.Errorf("saver %d: %v", i, err)
		}
	}
	stored := 0
	if err := inner.List(t.Context(), storage.SessionFile, func(storage.FileInfo) error { stored++; return nil }); err != nil {
		t.Fatal(err)
	}
	if ok != n || stored != n {
		t.Errorf("%d saves succeeded and %d reached the store, want %d", ok, stored, n)
	}
}

func TestCountersAndReset(t *testing.T) {
	be, _ := newBackend(t)
	for i, op := range allOps {
		for range i + 1 {
			_ = do(t.Context(), be, op, index)
		}
	}
	for i, op := range allOps {
		if got := be.Calls(op); got != i+1 {
			t.Errorf("Calls(%v) = %d, want %d", op, got, i+1)
		}
	}
	if got := be.Calls(faulty.Op(99)); got != 0 {
		t.Errorf("Calls(invalid op) = %d, want 0", got)
	}

	be.FailNth(faulty.OpStat, 2, nil)
	_ = do(t.Context(), be, faulty.OpStat, index)
	be.ResetCounters()
	for _, op := range allOps {
		if be.Calls(op) != 0 || be.Injected(op) != 0 {
			t.Errorf("%v counters not reset", op)
		}
	}
	// The pending fault still fires on the call it was set for.
	if err := do(t.Context(), be, faulty.OpStat, index); !errors.Is(err, faulty.ErrInjected) {
		t.Errorf("pending FailNth after ResetCounters: %v, want ErrInjected", err)
	}

	be.FailNth(faulty.OpLoad, 1, nil)
	be.FailWhen(func(faulty.Op, storage.Handle) error { return faulty.ErrInjected })
	be.ShortRead(faulty.Any, 0)
	be.FlipBit(faulty.Any, 0)
	be.RetryLoad(faulty.Any)
	be.SetLatency(time.Hour)
	be.Reset()
	if err := be.Save(t.Context(), pack, data, storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := storage.LoadAll(t.Context(), be, pack); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Load after Reset = %q, %v; want the data", got, err)
	}
}

func TestPassThrough(t *testing.T) {
	inner := mem.New()
	inner.SetAppendOnly(true)
	be := faulty.New(inner)
	if be.Features() != inner.Features() {
		t.Errorf("Features() = %+v, want the wrapped %+v", be.Features(), inner.Features())
	}
	if be.Location() != "faulty:mem" {
		t.Errorf("Location() = %q", be.Location())
	}
	if be.Unwrap() != storage.Backend(inner) {
		t.Error("Unwrap() is not the wrapped backend")
	}
	if err := be.Close(); err != nil {
		t.Error(err)
	}
}

func TestOpString(t *testing.T) {
	tests := []struct {
		op   faulty.Op
		want string
	}{
		{faulty.OpSave, "save"}, {faulty.OpLoad, "load"}, {faulty.OpStat, "stat"},
		{faulty.OpList, "list"}, {faulty.OpRemove, "remove"}, {faulty.Op(42), "op(42)"},
	}
	for _, tc := range tests {
		if got := tc.op.String(); got != tc.want {
			t.Errorf("Op(%d).String() = %q, want %q", int(tc.op), got, tc.want)
		}
	}
}

func TestInvalidKnobs(t *testing.T) {
	be, _ := newBackend(t)
	be.FailNth(faulty.Op(-1), 1, nil)
	be.SetLatency(time.Hour, faulty.Op(7))
	for _, op := range allOps {
		if err := do(t.Context(), be, op, index); err != nil {
			t.Errorf("%v after knobs of invalid ops: %v", op, err)
		}
	}
}
