package objstore

import "fmt"

// Error is an error of an object store: a short message, the storage
// sentinel it stands for (storage.ErrNotExist and the like; nil for
// none) and the error of the client library. errors.Is finds both the
// sentinel and what the library returned, while the message stays short
// and free of request details (URLs, which may carry credentials).
type Error struct {
	Msg      string
	Sentinel error // nil for errors without a sentinel
	Err      error
}

// Wrap returns the Error of sentinel with the message
// "<sentinel> (<desc>)", e.g. "object does not exist (HTTP 404)".
func Wrap(sentinel error, desc string, err error) *Error {
	return &Error{Msg: fmt.Sprintf("%v (%s)", sentinel, desc), Sentinel: sentinel, Err: err}
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel, if there is one, and the library's error.
func (e *Error) Unwrap() []error {
	if e.Sentinel == nil {
		return []error{e.Err}
	}
	return []error{e.Sentinel, e.Err}
}
