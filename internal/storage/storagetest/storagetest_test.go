package storagetest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

// The broken backends below each break one rule of the contract. The suite
// must notice: TestSuiteCatchesBrokenBackends runs it against each one in a
// child process and expects the named subtest to fail.

type notExistLost struct{ storage.Backend }

func (b notExistLost) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	fi, err := b.Backend.Stat(ctx, h)
	if err != nil {
		return fi, errors.New(err.Error()) // drops the sentinel
	}
	return fi, nil
}

type removeNotIdempotent struct{ storage.Backend }

func (b removeNotIdempotent) Remove(ctx context.Context, h storage.Handle) error {
	if _, err := b.Backend.Stat(ctx, h); err != nil {
		return err
	}
	return b.Backend.Remove(ctx, h)
}

type noRangeCheck struct{ storage.Backend }

func (b noRangeCheck) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(io.Reader) error) error {
	all, err := storage.LoadAll(ctx, b.Backend, h)
	if err != nil {
		return err
	}
	if offset < 0 || offset > int64(len(all)) {
		offset = int64(len(all))
	}
	all = all[offset:]
	if length > 0 && length < len(all) {
		all = all[:length]
	}
	return fn(bytes.NewReader(all)) // a short range instead of an error
}

// retainer keeps the caller's slice, which Save must not.
type retainer struct {
	storage.Backend
	kept map[storage.Handle][]byte
}

func (b *retainer) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if err := b.Backend.Save(ctx, h, data, opts); err != nil {
		return err
	}
	b.kept[h] = data
	return nil
}

func (b *retainer) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(io.Reader) error) error {
	if d, ok := b.kept[h]; ok && length == 0 && offset == 0 {
		return fn(bytes.NewReader(d))
	}
	return b.Backend.Load(ctx, h, length, offset, fn)
}

// racyCreate checks and then saves: not atomic.
type racyCreate struct{ storage.Backend }

func (b racyCreate) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if opts.IfNotExists {
		if _, err := b.Backend.Stat(ctx, h); err == nil {
			return storage.ErrExists
		}
		time.Sleep(5 * time.Millisecond)
		opts.IfNotExists = false
	}
	return b.Backend.Save(ctx, h, data, opts)
}

// listIgnoresError goes on listing after fn fails.
type listIgnoresError struct{ storage.Backend }

func (b listIgnoresError) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	var first error
	err := b.Backend.List(ctx, t, func(fi storage.FileInfo) error {
		if err := fn(fi); err != nil && first == nil {
			first = err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return first
}

// noValidation maps invalid handles to a valid one instead of refusing.
type noValidation struct{ storage.Backend }

func (b noValidation) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if h.Valid() != nil {
		h = storage.Handle{Type: storage.KeyFile, Name: "bogus"}
	}
	return b.Backend.Save(ctx, h, data, opts)
}

var broken = []struct {
	name    string
	newBE   func() storage.Backend
	subtest string // the subtest that must fail
}{
	{"NotExistLost", func() storage.Backend { return notExistLost{mem.New()} }, "Missing"},
	{"RemoveNotIdempotent", func() storage.Backend { return removeNotIdempotent{mem.New()} }, "Remove"},
	{"NoRangeCheck", func() storage.Backend { return noRangeCheck{mem.New()} }, "RangedLoad"},
	{"Retainer", func() storage.Backend { return &retainer{mem.New(), map[storage.Handle][]byte{}} }, "SaveDoesNotRetainData"},
	{"RacyCreate", func() storage.Backend { return racyCreate{mem.New()} }, "IfNotExistsRace"},
	{"ListIgnoresError", func() storage.Backend { return listIgnoresError{mem.New()} }, "ListCallbackError"},
	{"NoValidation", func() storage.Backend { return noValidation{mem.New()} }, "InvalidHandles"},
}

const childEnv = "STORAGETEST_BROKEN_CHILD"

// TestBrokenChild runs the suite against one broken backend; only in the
// child processes TestSuiteCatchesBrokenBackends starts.
func TestBrokenChild(t *testing.T) {
	name := os.Getenv(childEnv)
	if name == "" {
		t.Skip("runs only as a child of TestSuiteCatchesBrokenBackends")
	}
	for _, b := range broken {
		if b.name == name {
			storagetest.Run(t, func(*testing.T) storage.Backend { return b.newBE() })
			return
		}
	}
	t.Fatalf("unknown broken backend %q", name)
}

func TestSuiteCatchesBrokenBackends(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in a child")
	}
	for _, b := range broken {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenChild$/^"+b.subtest+"$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"="+b.name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("suite passed a backend breaking %s (err %v):\n%s", b.subtest, err, out)
			}
			if !regexp.MustCompile(`--- FAIL: TestBrokenChild/` + b.subtest + ` `).Match(out) {
				t.Fatalf("subtest %s did not fail:\n%s", b.subtest, out)
			}
		})
	}
}
