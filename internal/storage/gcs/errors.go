package gcs

import (
	"errors"
	"fmt"
	"net/http"

	"cloud.google.com/go/auth"
	"google.golang.org/api/googleapi"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

// mapErr turns a client library error into one that wraps the matching
// storage sentinel (ErrNotExist, ErrExists, ErrAuth, ErrPermission), or
// marks it storage.Permanent when retrying cannot help; transient errors
// (timeouts, 429, 5xx, broken connections) are left unmarked for the retry
// decorator. conditional says whether the request was a conditional
// create, for which a failed precondition (412) means the object exists.
// The message quotes only the status, and the reason and message of a
// JSON error document (see apiDesc); never a reply body, nor what
// net/http or a decoder quotes of a reply that is not what it should be.
func mapErr(err error, conditional bool) error {
	if err == nil {
		return nil
	}
	wrap := func(sentinel error, desc string) error { return objstore.Wrap(sentinel, desc, err) }
	var ge *googleapi.Error
	isAPI := errors.As(err, &ge)
	// Token errors: the credentials themselves were refused (a 4xx from
	// the token endpoint); 5xx there is transient.
	var ae *auth.Error
	if errors.As(err, &ae) && ae.Response != nil {
		if code := ae.Response.StatusCode; code >= 400 && code < 500 {
			return wrap(storage.ErrAuth, fmt.Sprintf("token endpoint: HTTP %d", code))
		}
		return &objstore.Error{Msg: fmt.Sprintf("token endpoint: HTTP %d", ae.Response.StatusCode), Err: err}
	}
	if !isAPI {
		// Network and I/O errors: transient, as they are, but for
		// net/http's and the decoders' messages about a reply that is not
		// what it should be, which quote it.
		switch {
		case objstore.IsNotHTTP(err):
			return &objstore.Error{Msg: "the reply is not valid HTTP (is something other than Cloud Storage listening there?)", Err: err}
		case isDecodeErr(err):
			return &objstore.Error{Msg: "the reply is not what Cloud Storage sends (is the endpoint Cloud Storage?)", Err: err}
		}
		return err
	}
	desc := apiDesc(ge)
	switch code := ge.Code; {
	case code == http.StatusNotFound:
		return wrap(storage.ErrNotExist, desc)
	case code == http.StatusUnauthorized:
		return wrap(storage.ErrAuth, desc)
	case code == http.StatusForbidden:
		// Missing permissions, retention policies, object holds.
		return wrap(storage.ErrPermission, desc)
	case code == http.StatusPreconditionFailed && conditional:
		return wrap(storage.ErrExists, desc)
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return &objstore.Error{Msg: desc, Err: err} // transient
	case code >= 400:
		return storage.Permanent(&objstore.Error{Msg: desc, Err: err})
	}
	return &objstore.Error{Msg: desc, Err: err}
}

// apiDesc describes a JSON API error: "HTTP 403 forbidden: <message>".
// The reason and message are set only when the reply was a JSON error
// document; the reason is shown when it looks like one, the message
// cleaned and bounded. ge.Body is never shown.
func apiDesc(ge *googleapi.Error) string {
	desc := fmt.Sprintf("HTTP %d", ge.Code)
	if len(ge.Errors) > 0 && objstore.IsCode(ge.Errors[0].Reason) {
		desc += " " + ge.Errors[0].Reason
	}
	if msg := objstore.CleanText(ge.Message, maxMessageLen); msg != "" {
		desc += ": " + msg
	}
	return desc
}
