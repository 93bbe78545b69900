package azure

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
)

// Of a reply, errors quote only the status and the error code of the
// x-ms-error-code header, which the blob service sets on every error
// reply: errors end up in logs, in statuses a tenant can read and in API
// replies, and the endpoint may be some other HTTP service (an internal
// one, named to read it through error messages). azcore.ResponseError's
// Error() shows the whole body of the reply, and its ErrorCode falls back
// to a code found in the body; neither is used.

// errorCode is the error code of a reply: its x-ms-error-code header when
// that is a code ("BlobNotFound"), else "". (An error without the reply,
// which only tests make, gives its ErrorCode.)
func errorCode(re *azcore.ResponseError) bloberror.Code {
	c := re.ErrorCode
	if re.RawResponse != nil {
		c = re.RawResponse.Header.Get("x-ms-error-code")
	}
	if !isCode(c) {
		return ""
	}
	return bloberror.Code(c)
}

// hasCode reports whether err is a reply with one of codes (by
// errorCode: bloberror.HasCode also takes a code found in the body).
func hasCode(err error, codes ...bloberror.Code) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	return slices.Contains(codes, errorCode(re))
}

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
// XML, or a value in it or in a header), whose message quotes bytes of
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
	// Messages without a type: of encoding/json, and of azcore, which
	// formats the decoder's error into its own with %s.
	msg := err.Error()
	return strings.Contains(msg, "invalid use of ,string struct tag") || strings.HasPrefix(msg, "unmarshalling type ")
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
