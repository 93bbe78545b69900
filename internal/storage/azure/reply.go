package azure

import (
	"errors"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/bunkerbackup/bunker/internal/storage/objstore"
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
	if !objstore.IsCode(c) {
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

// isDecodeErr reports whether err is the error of decoding a reply (its
// XML, or a value in it or in a header), whose message quotes bytes of
// the reply.
func isDecodeErr(err error) bool {
	if objstore.IsJSONError(err) || objstore.IsXMLError(err) || objstore.IsValueError(err) {
		return true
	}
	// azcore's message without a type: it formats the decoder's error
	// into its own with %s.
	return strings.HasPrefix(err.Error(), "unmarshalling type ")
}
