package s3

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// What a reply holds is quoted in errors only when it is the store's own
// error document (the S3 XML <Error>), and then only its code and a
// cleaned, bounded message: errors end up in logs, in statuses a tenant
// can read and in API replies, and the endpoint may be some other HTTP
// service (an internal one, named to read it through error messages).

const (
	// maxMessageLen bounds the message of an error document we quote.
	maxMessageLen = 256
	// maxErrorBody is the largest error reply body read; a larger one is
	// no S3 error document.
	maxErrorBody = 64 << 10
)

// replyFilter is the transport under minio-go. minio-go puts up to 1 KiB
// of an error reply body it cannot parse into its error's message, and
// the reason phrase into its code; so every reply with a status of 300 or
// more gets the standard reason phrase, and its body is replaced: by a
// clean S3 error document (code, bounded message, region) when it is one,
// else by nothing. The x-minio-error-code and -desc headers (MinIO's
// error code and message of HEAD replies) are kept only when clean.
type replyFilter struct{ next http.RoundTripper }

func (f replyFilter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 300 {
		return resp, err
	}
	resp.Status = fmt.Sprintf("%03d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	_ = resp.Body.Close()
	var doc []byte
	if rerr == nil && len(body) <= maxErrorBody {
		doc = errorDoc(body)
	}
	resp.Body = io.NopCloser(bytes.NewReader(doc))
	resp.ContentLength = int64(len(doc))
	resp.Header.Set("Content-Length", strconv.Itoa(len(doc)))
	resp.Header.Del("Content-Encoding")
	if c := resp.Header.Get("X-Minio-Error-Code"); c != "" && !isCode(c) {
		resp.Header.Del("X-Minio-Error-Code")
		resp.Header.Del("X-Minio-Error-Desc")
	}
	if d := resp.Header.Get("X-Minio-Error-Desc"); d != "" {
		resp.Header.Set("X-Minio-Error-Desc", cleanText(d, maxMessageLen))
	}
	return resp, nil
}

// s3Error is the part of an S3 error document that is kept.
type s3Error struct {
	XMLName xml.Name `xml:"Error"`
	Code    string
	Message string `xml:",omitempty"`
	Region  string `xml:",omitempty"`
}

// errorDoc returns a clean copy of the S3 error document body, or nil if
// body is not one.
func errorDoc(body []byte) []byte {
	var e s3Error
	if xml.Unmarshal(body, &e) != nil || !isCode(e.Code) {
		return nil
	}
	e.Message = cleanText(e.Message, maxMessageLen)
	if !isRegion(e.Region) {
		e.Region = ""
	}
	doc, err := xml.Marshal(e)
	if err != nil {
		return nil
	}
	return doc
}

// isCode reports whether s looks like an error code of a store's protocol
// ("NoSuchKey"): a letter, then up to 63 letters, digits, '.', '_' or '-'.
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

// isRegion reports whether s looks like a region name ("eu-west-1").
func isRegion(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
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

// isDecodeErr reports whether err is the error of decoding a reply's XML
// (or a value in it), whose message quotes bytes of the reply.
func isDecodeErr(err error) bool {
	var se *xml.SyntaxError
	var ue xml.UnmarshalError
	var te *xml.TagPathError
	var pe *time.ParseError
	var ne *strconv.NumError
	return errors.As(err, &se) || errors.As(err, &ue) || errors.As(err, &te) || errors.As(err, &pe) || errors.As(err, &ne)
}
