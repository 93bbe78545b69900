package objstore

import (
	"errors"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
)

func TestError(t *testing.T) {
	lib := errors.New("library error with http://host/?sig=secret")

	e := Wrap(storage.ErrNotExist, "HTTP 404 BlobNotFound", lib)
	if got, want := e.Error(), storage.ErrNotExist.Error()+" (HTTP 404 BlobNotFound)"; got != want {
		t.Errorf("Wrap(...).Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, storage.ErrNotExist) || !errors.Is(e, lib) {
		t.Errorf("Wrap(...) = %v: want it to wrap the sentinel and the library error", e)
	}
	if errors.Is(e, storage.ErrExists) {
		t.Errorf("Wrap(ErrNotExist, ...) is ErrExists")
	}
	if !storage.IsPermanent(e) {
		t.Errorf("Wrap(ErrNotExist, ...) is not permanent, as its sentinel is")
	}

	// Without a sentinel: the message as given, only the library error.
	plain := &Error{Msg: "HTTP 503", Err: lib}
	if got := plain.Error(); got != "HTTP 503" {
		t.Errorf("Error() = %q, want %q", got, "HTTP 503")
	}
	if !errors.Is(plain, lib) {
		t.Errorf("%v does not wrap the library error", plain)
	}
	if got := plain.Unwrap(); len(got) != 1 {
		t.Errorf("Unwrap() without a sentinel = %v, want just the library error", got)
	}
	if storage.IsPermanent(plain) {
		t.Errorf("an Error without a sentinel is permanent; only storage.Permanent may make it so")
	}
	for _, s := range []error{storage.ErrNotExist, storage.ErrExists, storage.ErrAuth, storage.ErrPermission, storage.ErrNoSpace} {
		if errors.Is(plain, s) {
			t.Errorf("%v is %v", plain, s)
		}
	}

	// errors.As reaches the library's error type through it.
	var target *libError
	if !errors.As(Wrap(storage.ErrAuth, "HTTP 401", &libError{code: 401}), &target) || target.code != 401 {
		t.Errorf("errors.As did not find the library error")
	}
	// As the cause of a storage.Permanent error it still counts.
	if err := storage.Permanent(Wrap(storage.ErrPermission, "HTTP 403", lib)); !errors.Is(err, storage.ErrPermission) || !storage.IsPermanent(err) {
		t.Errorf("Permanent(Wrap(ErrPermission)) = %v", err)
	}
}

type libError struct{ code int }

func (e *libError) Error() string { return "lib" }
