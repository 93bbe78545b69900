package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

// replyError makes a minio-go error response readable: code, message and
// HTTP status. It leaves out the request details, which may name
// credentials (the access key). The code is shown only when it is one
// (minio-go makes the reason phrase the code of a reply without an error
// document), the message only with a code, cleaned and bounded: it is
// the text of whatever answered (see replyFilter, which keeps bodies
// that are not S3 error documents from minio-go).
type replyError struct{ resp minio.ErrorResponse }

func (e *replyError) Error() string {
	var b strings.Builder
	if objstore.IsCode(e.resp.Code) {
		b.WriteString(e.resp.Code)
		if msg := objstore.CleanText(e.resp.Message, maxMessageLen); msg != "" && msg != e.resp.Code {
			b.WriteString(": ")
			b.WriteString(msg)
		}
	}
	if e.resp.StatusCode != 0 {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "HTTP %d", e.resp.StatusCode)
	}
	if b.Len() == 0 {
		return "unknown error reply"
	}
	return b.String()
}

func (e *replyError) Unwrap() error { return e.resp }

// Error codes of S3 replies, grouped by the sentinel they map to.
var (
	notExistCodes = map[string]bool{
		"NoSuchKey": true, "NoSuchBucket": true, "NoSuchVersion": true, "NotFound": true,
	}
	authCodes = map[string]bool{
		"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true,
		"ExpiredTokenException": true, "InvalidToken": true, "TokenRefreshRequired": true,
		"InvalidSecurity": true, "AccountProblem": true, "MissingSecurityHeader": true,
		"InvalidClientTokenId": true, "UnrecognizedClientException": true,
		"XAdminUserNotFound": true, // versitygw: unknown access key
	}
	permissionCodes = map[string]bool{
		"AccessDenied": true, "ObjectLocked": true, "AllAccessDisabled": true,
		"MethodNotAllowed": true, "InvalidObjectState": true,
	}
	noSpaceCodes = map[string]bool{
		"QuotaExceeded": true, "XMinioAdminBucketQuotaExceeded": true, "StorageFull": true,
		"XMinioStorageFull": true, "InsufficientStorage": true, "ServiceQuotaExceeded": true,
	}
	// transientCodes are replies to retry, even with a 4xx status.
	transientCodes = map[string]bool{
		"SlowDown": true, "SlowDownWrite": true, "SlowDownRead": true, "RequestTimeout": true,
		"Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
		"RequestThrottled": true, "InternalError": true, "ServiceUnavailable": true,
		"OperationAborted": true, "ConditionalRequestConflict": true, "RequestTimeTooSkewed": true,
		"XMinioServerNotInitialized": true,
	}
)

// mapErr turns an error of minio-go into one that matches the storage
// sentinel it stands for (or is marked storage.Permanent). Transient
// failures (5xx replies, throttling, network errors) are returned as
// they are, for the retry decorator to retry.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		// Network and I/O errors: transient. net/http's and the XML
		// decoder's messages about a reply that is not what it should be
		// quote it: they are left out.
		switch {
		case objstore.IsNotHTTP(err):
			return &objstore.Error{Msg: "the reply is not valid HTTP (is something other than an S3 store listening there?)", Err: err}
		case isDecodeErr(err):
			return &objstore.Error{Msg: "the reply is not the S3 XML it should be (is the endpoint an S3 store?)", Err: err}
		}
		return err
	}
	reply := &replyError{resp: resp}
	// The sentinel with what the store said: "<sentinel> (<reply>)".
	wrap := func(sentinel error) error { return objstore.Wrap(sentinel, reply.Error(), reply) }
	code, status := resp.Code, resp.StatusCode
	switch {
	case notExistCodes[code]:
		return wrap(storage.ErrNotExist)
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return wrap(storage.ErrExists)
	case authCodes[code] || status == http.StatusUnauthorized:
		return wrap(storage.ErrAuth)
	case noSpaceCodes[code] || status == http.StatusInsufficientStorage:
		return wrap(storage.ErrNoSpace)
	case permissionCodes[code] || isLockRefusal(resp):
		return wrap(storage.ErrPermission)
	case code == "NotImplemented" || status == http.StatusNotImplemented:
		return storage.Permanent(reply)
	case transientCodes[code] || status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout:
		return reply
	case status == http.StatusNotFound:
		return wrap(storage.ErrNotExist)
	case status == http.StatusForbidden:
		return wrap(storage.ErrPermission)
	case status == 0 && code == "":
		return err // not a reply of the store
	}
	return storage.Permanent(reply)
}

// isLockRefusal reports whether a reply refuses an operation because of
// object lock or a legal hold; stores differ in the code they use
// (AccessDenied, ObjectLocked, InvalidRequest).
func isLockRefusal(resp minio.ErrorResponse) bool {
	if resp.Code != "InvalidRequest" && resp.Code != "InvalidArgument" && resp.StatusCode != http.StatusForbidden {
		return false
	}
	m := strings.ToLower(resp.Message)
	return strings.Contains(m, "object lock") || strings.Contains(m, "retention") ||
		strings.Contains(m, "legal hold") || strings.Contains(m, "worm") || strings.Contains(m, "locked")
}

// codeOf returns the S3 error code of an error, or "".
func codeOf(err error) string {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code
	}
	return ""
}
