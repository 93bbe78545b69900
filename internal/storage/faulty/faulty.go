package faulty

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// Op is a backend operation that faults can be injected into.
type Op int

// The operations.
const (
	OpSave Op = iota
	OpLoad
	OpStat
	OpList
	OpRemove
	numOps
)

func (o Op) String() string {
	switch o {
	case OpSave:
		return "save"
	case OpLoad:
		return "load"
	case OpStat:
		return "stat"
	case OpList:
		return "list"
	case OpRemove:
		return "remove"
	}
	return fmt.Sprintf("op(%d)", int(o))
}

func (o Op) valid() bool { return o >= 0 && o < numOps }

var (
	// ErrCrashed is returned by Save and Remove after the simulated crash
	// of CrashAfter: nothing more reaches the store.
	ErrCrashed = errors.New("faulty: process crashed, nothing reaches the store")
	// ErrInjected is the error FailNth injects when given a nil error.
	ErrInjected = errors.New("faulty: injected fault")
)

// Matcher selects the objects a Load fault applies to.
type Matcher func(h storage.Handle) bool

// Any matches every handle.
func Any(storage.Handle) bool { return true }

// Is matches the handle h only.
func Is(h storage.Handle) Matcher {
	return func(x storage.Handle) bool { return x == h }
}

// OfType matches the handles of type t.
func OfType(t storage.FileType) Matcher {
	return func(x storage.Handle) bool { return x.Type == t }
}

// Once matches only the first handle m matches (once in all, across
// goroutines).
func Once(m Matcher) Matcher {
	var (
		mu   sync.Mutex
		done bool
	)
	return func(h storage.Handle) bool {
		mu.Lock()
		defer mu.Unlock()
		if done || !m(h) {
			return false
		}
		done = true
		return true
	}
}

type nthFault struct {
	op  Op
	at  int // value of calls[op] on which to fire
	err error
}

// Backend is a fault-injecting storage.Backend wrapping another one. The
// zero knobs inject nothing. It is safe for concurrent use.
type Backend struct {
	be storage.Backend

	// crashMu serialises Saves while a crash is armed, so that exactly the
	// promised number of Saves reaches the store.
	crashMu sync.Mutex

	mu        sync.Mutex
	calls     [numOps]int
	injected  [numOps]int
	nth       []nthFault
	when      func(op Op, h storage.Handle) error
	latency   [numOps]time.Duration
	short     Matcher
	shortKeep int
	flip      Matcher
	flipBit   int64
	retry     Matcher
	crashArm  bool
	crashLeft int
	crashed   bool
}

var _ storage.Backend = (*Backend)(nil)

// New wraps be. Without knobs turned, the wrapper only counts calls.
func New(be storage.Backend) *Backend { return &Backend{be: be} }

// Unwrap returns the wrapped backend, to look at the store behind the
// faults (after a simulated crash, say).
func (b *Backend) Unwrap() storage.Backend { return b.be }

// FailNth makes the n-th call of op from now on (n = 1: the next call)
// fail with err (ErrInjected if nil), wrapped, without reaching the
// wrapped backend. n below 1 counts as 1. Several such faults can be
// pending at once; each fires once.
func (b *Backend) FailNth(op Op, n int, err error) {
	if !op.valid() {
		return
	}
	if n < 1 {
		n = 1
	}
	if err == nil {
		err = ErrInjected
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nth = append(b.nth, nthFault{op: op, at: b.calls[op] + n, err: err})
}

// FailWhen sets a predicate asked before every call (for List, h has only
// the Type): a non-nil error fails the call with that error, wrapped,
// without reaching the wrapped backend. nil removes the predicate. pred
// must be safe for concurrent use; it may turn knobs of b.
func (b *Backend) FailWhen(pred func(op Op, h storage.Handle) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.when = pred
}

// ShortRead makes Loads of the objects match selects hand their callback a
// reader that yields at most keep bytes and then fails with
// io.ErrUnexpectedEOF; it never ends cleanly, even if keep covers the
// whole range. A nil match turns it off.
func (b *Backend) ShortRead(match Matcher, keep int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.short, b.shortKeep = match, max(keep, 0)
}

// FlipBit makes Loads of the objects match selects hand their callback the
// data with bit number bit of the loaded range flipped (bit 0 is the low
// bit of the first byte; bit is taken modulo the range's size in bits).
// Empty ranges are left alone. A nil match turns it off.
func (b *Backend) FlipBit(match Matcher, bit int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flip, b.flipBit = match, bit
}

// RetryLoad makes Loads of the objects match selects behave as a retrying
// backend may: the callback first gets a reader that breaks off with
// io.ErrUnexpectedEOF halfway through the range and, if it returns an
// error, is called again with a proper reader. A callback that is not
// idempotent, or ignores read errors, shows up. A nil match turns it off.
func (b *Backend) RetryLoad(match Matcher) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.retry = match
}

// SetLatency delays every call of the given operations (all if none) by d
// before it does anything else, or until its context ends. d <= 0 removes
// the delay.
func (b *Backend) SetLatency(d time.Duration, ops ...Op) {
	if len(ops) == 0 {
		ops = []Op{OpSave, OpLoad, OpStat, OpList, OpRemove}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, op := range ops {
		if op.valid() {
			b.latency[op] = max(d, 0)
		}
	}
}

// CrashAfter simulates a process that dies after n more successful Saves
// (n <= 0: now): from then on every Save and Remove fails with ErrCrashed
// without reaching the wrapped backend. Loads, Stats and Lists still pass,
// so a test can look at what survived. While the crash is armed, Saves are
// serialised. Reset revives the backend.
func (b *Backend) CrashAfter(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.crashArm, b.crashLeft = true, max(n, 0)
	b.crashed = n <= 0
}

// Crashed reports whether the simulated crash of CrashAfter has happened.
func (b *Backend) Crashed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.crashed
}

// Reset turns every knob off (pending FailNth faults, FailWhen, ShortRead,
// FlipBit, RetryLoad, latency) and undoes CrashAfter. Counters are kept.
func (b *Backend) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nth, b.when = nil, nil
	b.latency = [numOps]time.Duration{}
	b.short, b.flip, b.retry = nil, nil, nil
	b.crashArm, b.crashLeft, b.crashed = false, 0, false
}

// Calls returns how many times op was called, failed calls included.
func (b *Backend) Calls(op Op) int {
	if !op.valid() {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[op]
}

// Injected returns how many calls of op had a fault injected: an error
// returned by the wrapper (FailNth, FailWhen, ErrCrashed) or a Load whose
// data was tampered with (ShortRead, FlipBit, RetryLoad).
func (b *Backend) Injected(op Op) int {
	if !op.valid() {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.injected[op]
}

// ResetCounters sets the Calls and Injected counters to zero. Pending
// FailNth faults keep counting from when they were set.
func (b *Backend) ResetCounters() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.nth {
		b.nth[i].at -= b.calls[b.nth[i].op]
	}
	b.calls = [numOps]int{}
	b.injected = [numOps]int{}
}

// before counts a call and decides whether a fault fails it.
func (b *Backend) before(ctx context.Context, op Op, h storage.Handle) error {
	name := h.String()
	b.mu.Lock()
	b.calls[op]++
	if b.crashed && (op == OpSave || op == OpRemove) {
		b.injected[op]++
		b.mu.Unlock()
		return fmt.Errorf("%s %s: %w", op, name, ErrCrashed)
	}
	var err error
	for i, f := range b.nth {
		if f.op == op && f.at == b.calls[op] {
			err = f.err
			b.nth = append(b.nth[:i:i], b.nth[i+1:]...)
			break
		}
	}
	when, lat := b.when, b.latency[op]
	b.mu.Unlock()

	if lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s %s: %w", op, name, ctx.Err())
		case <-t.C:
		}
	}
	if err == nil && when != nil {
		err = when(op, h)
	}
	if err != nil {
		b.mu.Lock()
		b.injected[op]++
		b.mu.Unlock()
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	return nil
}

// Location returns "faulty:" and the wrapped backend's location.
func (b *Backend) Location() string { return "faulty:" + b.be.Location() }

// Features returns the wrapped backend's features.
func (b *Backend) Features() storage.Features { return b.be.Features() }

// Close closes the wrapped backend.
func (b *Backend) Close() error { return b.be.Close() }

// Save passes the call on unless a fault or the simulated crash fails it.
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	b.mu.Lock()
	armed := b.crashArm
	b.mu.Unlock()
	if armed {
		b.crashMu.Lock()
		defer b.crashMu.Unlock()
	}
	if err := b.before(ctx, OpSave, h); err != nil {
		return err
	}
	if err := b.be.Save(ctx, h, data, opts); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.crashArm && !b.crashed {
		b.crashLeft--
		b.crashed = b.crashLeft <= 0
	}
	return nil
}

// Load passes the call on, failing it or tampering with the data as the
// knobs say.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := b.before(ctx, OpLoad, h); err != nil {
		return err
	}
	b.mu.Lock()
	short, keep, flip, bit, retry := b.short, b.shortKeep, b.flip, b.flipBit, b.retry
	b.mu.Unlock()
	doShort := short != nil && short(h)
	doFlip := flip != nil && flip(h)
	doRetry := retry != nil && retry(h)
	if !doShort && !doFlip && !doRetry {
		return b.be.Load(ctx, h, length, offset, fn)
	}
	b.mu.Lock()
	b.injected[OpLoad]++
	b.mu.Unlock()
	return b.be.Load(ctx, h, length, offset, func(rd io.Reader) error {
		buf, err := io.ReadAll(rd)
		if err != nil {
			return err
		}
		if doFlip && len(buf) > 0 {
			bits := int64(len(buf)) * 8
			i := (bit%bits + bits) % bits
			buf[i/8] ^= 1 << (i % 8)
		}
		if doRetry {
			if fn(&shortReader{r: bytes.NewReader(buf), left: len(buf) / 2}) == nil {
				return nil
			}
		}
		var r io.Reader = bytes.NewReader(buf)
		if doShort {
			r = &shortReader{r: r, left: keep}
		}
		return fn(r)
	})
}

// Stat passes the call on unless a fault fails it.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	if err := b.before(ctx, OpStat, h); err != nil {
		return storage.FileInfo{}, err
	}
	return b.be.Stat(ctx, h)
}

// List passes the call on unless a fault fails it.
func (b *Backend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	if err := b.before(ctx, OpList, storage.Handle{Type: t}); err != nil {
		return err
	}
	return b.be.List(ctx, t, fn)
}

// Remove passes the call on unless a fault or the simulated crash fails
// it.
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	if err := b.before(ctx, OpRemove, h); err != nil {
		return err
	}
	return b.be.Remove(ctx, h)
}

// shortReader yields at most left bytes of r and then, instead of ending,
// fails with io.ErrUnexpectedEOF.
type shortReader struct {
	r    io.Reader
	left int
}

func (s *shortReader) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if len(p) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	s.left -= n
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
