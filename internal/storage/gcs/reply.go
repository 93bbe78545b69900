package gcs

import (
	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

// What a reply holds is quoted in errors only when it is the service's own
// JSON error document ({"error": {"code", "message", "errors": [{"reason"}]}}),
// and then only the reason and a cleaned, bounded message: errors end up
// in logs, in statuses a tenant can read and in API replies, and the
// endpoint may be some other HTTP service (an internal one, named to read
// it through error messages). googleapi.Error keeps the whole body of any
// other reply, and its Error() shows it: that text is never used.

// maxMessageLen bounds the message of an error document we quote.
const maxMessageLen = 256

// isDecodeErr reports whether err is the error of decoding a reply (its
// JSON, or a value in it or in a header), whose message quotes bytes of
// the reply.
func isDecodeErr(err error) bool {
	return objstore.IsJSONError(err) || objstore.IsXMLError(err) || objstore.IsValueError(err)
}
