package rest

import (
	"errors"
	"net/textproto"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What a server sends is quoted in errors only when it is proven to be a
// bunker server's (the HeaderError header), and then cleaned: errors end
// up in logs, in statuses a tenant can read and in API replies, and the
// URL may lead to some other service.

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

// errNotHTTP is a client error about a reply that is not valid HTTP,
// without the bytes net/http quotes of it. It stays transient: a
// connection may have been garbled on its way.
type errNotHTTP struct{ err error }

func (e errNotHTTP) Error() string {
	return "the reply is not valid HTTP (is something other than a bunker server listening there?)"
}

func (e errNotHTTP) Unwrap() error { return e.err }
