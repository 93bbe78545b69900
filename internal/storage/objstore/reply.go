package objstore

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

// What a server sends is quoted in errors only when a backend knows it
// for its store's own words (an error code, the message of an error
// document, a header of its protocol), and then cleaned: errors end up in
// logs, in statuses a tenant can read and in API replies, and the
// endpoint may be some other service (an internal one, named to read it
// through error messages). The helpers below are the parts of that rule
// the backends share; each backend parses its own protocol's errors.

// CleanText makes text a server sent fit to quote in an error: valid
// UTF-8 on one line, runs of spaces and control characters collapsed to
// one space, format characters (which could reorder text in a terminal)
// dropped, and at most max bytes (cut at a character, with "…").
func CleanText(s string, max int) string {
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

// IsCode reports whether s looks like an error code or reason of a
// store's protocol ("NoSuchKey", "notFound"): a letter, then up to 63
// letters, digits, '.', '_' or '-'.
func IsCode(s string) bool {
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

// notHTTPMessages are the parts of net/http's messages about a reply that
// is not valid HTTP, which quote what arrived: the banner of some other
// service that listens at the address, say.
var notHTTPMessages = []string{
	"malformed HTTP", "malformed MIME header", "bad Content-Length", "invalid empty Content-Length",
	"bad trailer key", "invalid Trailer key", "transfer encoding", "server sent GOAWAY",
}

// IsNotHTTP reports whether err is net/http's complaint about a reply
// that is not valid HTTP. Its message quotes what arrived: a backend
// names the failure in words of its own and keeps err only to unwrap.
func IsNotHTTP(err error) bool {
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

// The decoders' errors about a reply that is not what it should be quote
// bytes of it. A backend asks for the formats its client library decodes
// (and adds the messages of the library's own decoding, which have no
// type).

// IsXMLError reports whether err is encoding/xml's error about a reply's
// XML: a syntax error, or a value that does not fit.
func IsXMLError(err error) bool {
	var se *xml.SyntaxError
	var ue xml.UnmarshalError
	return errors.As(err, &se) || errors.As(err, &ue)
}

// IsJSONError reports whether err is encoding/json's error about a
// reply's JSON: a syntax error, a value of the wrong type, or a
// ",string" value that is not a quoted one (an error without a type).
func IsJSONError(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te) || strings.Contains(err.Error(), "invalid use of ,string struct tag")
}

// IsValueError reports whether err is the error of parsing a time or a
// number of a reply (in its body or in a header).
func IsValueError(err error) bool {
	var pe *time.ParseError
	var ne *strconv.NumError
	return errors.As(err, &pe) || errors.As(err, &ne)
}

// ReplyReader reads a reply body for a consumer (a Load callback, a
// decoder) and records the error of reading it, so that the consumer's
// failure because of the transfer can be told from its own. Err is the
// last error of R other than io.EOF.
type ReplyReader struct {
	R   io.Reader
	Err error
}

func (r *ReplyReader) Read(p []byte) (int, error) {
	n, err := r.R.Read(p)
	if err != nil && err != io.EOF {
		r.Err = err
	}
	return n, err
}
