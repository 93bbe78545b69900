package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// The checks below are shared by the tests of backends that talk to a
// server (s3, azure, gcs): not part of the contract Run checks, but
// properties every such backend should have.

// CheckLeaks fails t if goroutines started after the call are left when
// t ends, once the cleanups registered after the call (backends, and
// servers started later) have run. Call it before making the backends.
func CheckLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// Isolated checks that repositories sharing a bucket under different
// prefixes (one of them may be at the root of the bucket) do not see
// each other's objects: each saves a config, a pack and a key, and each
// lists exactly one of every type and loads its own config. The
// backends must be empty.
func Isolated(t *testing.T, backends ...storage.Backend) {
	t.Helper()
	for i, be := range backends {
		for _, h := range []storage.Handle{{Type: storage.ConfigFile}, {Type: storage.PackFile, Name: "abcd"}, {Type: storage.KeyFile, Name: "k"}} {
			if err := be.Save(t.Context(), h, []byte{byte(i)}, storage.SaveOptions{}); err != nil {
				t.Fatalf("%s: Save(%v): %v", be.Location(), h, err)
			}
		}
	}
	for i, be := range backends {
		for _, ft := range []storage.FileType{storage.ConfigFile, storage.PackFile, storage.KeyFile} {
			n := 0
			err := be.List(t.Context(), ft, func(storage.FileInfo) error {
				n++
				return nil
			})
			if err != nil || n != 1 {
				t.Errorf("%s: List(%s) = %d objects, %v; want 1", be.Location(), ft, n, err)
			}
		}
		got, err := storage.LoadAll(t.Context(), be, storage.Handle{Type: storage.ConfigFile})
		if err != nil || !bytes.Equal(got, []byte{byte(i)}) {
			t.Errorf("%s: config = %v, %v; want [%d]", be.Location(), got, err, i)
		}
	}
}

// LoadEmptyRangeAtEnd checks that reading nothing from the very end of
// an object works, as for a file, and that reading a byte from there is
// a permanent error. (Stores answer both with "range not satisfiable".)
func LoadEmptyRangeAtEnd(t *testing.T, be storage.Backend) {
	t.Helper()
	h := storage.Handle{Type: storage.PackFile, Name: "ten"}
	if err := be.Save(t.Context(), h, []byte("0123456789"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	err := be.Load(t.Context(), h, 0, 10, func(rd io.Reader) error {
		var err error
		got, err = io.ReadAll(rd)
		return err
	})
	if err != nil || len(got) != 0 {
		t.Errorf("Load(offset = size, length 0) = %q, %v; want nothing, nil", got, err)
	}
	err = be.Load(t.Context(), h, 1, 10, func(io.Reader) error { return nil })
	if err == nil || !storage.IsPermanent(err) {
		t.Errorf("Load(offset = size, length 1) = %v, want a permanent error", err)
	}
}

// ServerKilled checks that a store that goes away mid-operation gives a
// clear, transient error naming the location and the object: kill ends
// the server of be while a Load of a 48 MiB pack streams; the Load, and
// then a Save and a Stat, must fail with a transient error (the Save
// saying "connection refused"). The backend should retry little (a short
// retry delay), or the test takes long.
func ServerKilled(t *testing.T, be storage.Backend, kill func()) {
	t.Helper()
	h := storage.Handle{Type: storage.PackFile, Name: "big"}
	data := bytes.Repeat([]byte("x"), 48<<20)
	if err := be.Save(t.Context(), h, data, storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	err := be.Load(t.Context(), h, 0, 0, func(rd io.Reader) error {
		var b [1]byte
		if _, err := io.ReadFull(rd, b[:]); err != nil {
			return err
		}
		kill()
		_, err := io.Copy(io.Discard, rd)
		return err
	})
	checkTransient(t, "Load while the server dies", err, be, h)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err = be.Save(ctx, h, []byte("x"), storage.SaveOptions{})
	checkTransient(t, "Save to a dead server", err, be, h)
	if err != nil && !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Save to a dead server = %v, want it to say connection refused", err)
	}
	_, err = be.Stat(ctx, h)
	checkTransient(t, "Stat on a dead server", err, be, h)
}

// checkTransient checks that err is a transient error naming the
// location of be and h.
func checkTransient(t *testing.T, what string, err error, be storage.Backend, h storage.Handle) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s succeeded, want error", what)
	case storage.IsPermanent(err):
		t.Errorf("%s = %v, want a transient error", what, err)
	case !strings.Contains(err.Error(), be.Location()) || !strings.Contains(err.Error(), h.String()):
		t.Errorf("%s = %v, want the location %s and %v in it", what, err, be.Location(), h)
	default:
		t.Logf("%s: %v", what, err)
	}
}

// UseAndClose saves, loads and lists a few packs of 100 KiB through be
// and closes it; with CheckLeaks it checks that a closed backend leaves
// no goroutines (of its HTTP client) behind.
func UseAndClose(t *testing.T, be storage.Backend) {
	t.Helper()
	for i := range 8 {
		h := storage.Handle{Type: storage.PackFile, Name: fmt.Sprintf("p%d", i)}
		if err := be.Save(t.Context(), h, bytes.Repeat([]byte{1}, 100<<10), storage.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := storage.LoadAll(t.Context(), be, h); err != nil {
			t.Fatal(err)
		}
		if err := be.List(t.Context(), storage.PackFile, func(storage.FileInfo) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
}

// sentinels are the storage errors CheckErrorClass tells apart.
var sentinels = []error{storage.ErrNotExist, storage.ErrExists, storage.ErrAuth, storage.ErrPermission, storage.ErrNoSpace}

// CheckErrorClass checks what a backend's error mapping made of in: that
// got wraps sentinel and no other storage sentinel (none, for a nil
// sentinel), and that storage.IsPermanent(got) is permanent.
func CheckErrorClass(t *testing.T, in, got, sentinel error, permanent bool) {
	t.Helper()
	for _, s := range sentinels {
		if is, want := errors.Is(got, s), s == sentinel; is != want {
			t.Errorf("mapErr(%v) = %v: errors.Is(%v) = %v, want %v", in, got, s, is, want)
		}
	}
	if is := storage.IsPermanent(got); is != permanent {
		t.Errorf("mapErr(%v) = %v: IsPermanent = %v, want %v", in, got, is, permanent)
	}
}
