package gcs

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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

// isCode reports whether s looks like an error code or reason of a
// store's protocol ("notFound"): a letter, then up to 63 letters, digits,
// '.', '_' or '-'.
func isCode(s string) bool {
	if s == "" || len(s) > 64 || !(s[0] >= 'A' && s[0] <= 'Z' || s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// cleanText makes text a server sent fit to quote in an error: valid
// UTF-8 on one line, runs of spaces and control characters collapsed to
// one space, format characters (which could reorder text in a terminal)
// dropped, and at most max bytes (cut at a character, with "…").
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Cf, r):
			continue
		case unicode.IsSpace(r) || unicode.IsControl(r):
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		if b.Len()+utf8.RuneLen(r) > max {
			return strings.TrimSuffix(b.String(), " ") + "…"
		}
		b.WriteRune(r)
	}
	return b.String()
}

// notHTTPMessages are the parts of net/http's messages about a reply that
// is not valid HTTP, which quote what arrived: the banner of some other
// service that listens at the address, say.
var notHTTPMessages = []string{
	"malformed HTTP", "malformed MIME header", "bad Content-Length", "invalid empty Content-Length",
	"bad trailer key", "invalid Trailer key", "transfer encoding", "server sent GOAWAY",
}

// isNotHTTP reports whether err is net/http's complaint about a reply
// that is not valid HTTP.
func isNotHTTP(err error) bool {
	var pe textproto.ProtocolError
	if errors.As(err, &pe) {
		return true
	}
	msg := err.Error()
	for _, s := range notHTTPMessages {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// isDecodeErr reports whether err is the error of decoding a reply (its
// JSON, or a value in it or in a header), whose message quotes bytes of
// the reply.
func isDecodeErr(err error) bool {
	var (
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
		xe  *xml.SyntaxError
		xue xml.UnmarshalError
		pe  *time.ParseError
		ne  *strconv.NumError
	)
	if errors.As(err, &se) || errors.As(err, &te) || errors.As(err, &xe) || errors.As(err, &xue) ||
		errors.As(err, &pe) || errors.As(err, &ne) {
		return true
	}
	// Messages of encoding/json and the library without a type.
	msg := err.Error()
	return strings.Contains(msg, "invalid use of ,string struct tag") || strings.Contains(msg, "storage: invalid Content-Range")
}

// readErrs records the errors of reading a reply, which tells them from
// the errors of a Load callback.
type readErrs struct {
	r   io.Reader
	err error
}

func (r *readErrs) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}
