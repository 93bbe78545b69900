package azure

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

// Service error codes that are not constants of bloberror.
const codeBlobImmutableDueToLegalHold = "BlobImmutableDueToLegalHold"

// mapErr turns an SDK error into one that wraps the matching storage
// sentinel (ErrNotExist, ErrExists, ErrAuth, ErrPermission; the blob
// service has no quota error to map to ErrNoSpace),
// or marks it storage.Permanent when retrying cannot help; transient
// errors (timeouts, throttling, 5xx, broken connections) are left
// unmarked for the retry decorator. conditional says whether the request
// was a conditional create, for which a failed precondition means the
// object exists. The message never holds the request URL's query, which
// may carry a SAS token, nor anything of a reply but its status and error
// code (see errorCode), nor what net/http or a decoder quotes of a reply
// that is not what it should be.
func mapErr(err error, conditional bool) error {
	if err == nil {
		return nil
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		var ue *url.Error
		switch {
		case objstore.IsNotHTTP(err):
			return &objstore.Error{Msg: "the reply is not valid HTTP (is something other than Azure Blob Storage listening there?)", Err: err}
		case isDecodeErr(err):
			return &objstore.Error{Msg: "the reply is not what Azure Blob Storage sends (is the endpoint Azure Blob Storage?)", Err: err}
		case errors.As(err, &ue):
			// Transport errors repeat the request URL, SAS included.
			return &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
		}
		return err
	}
	code := errorCode(re)
	desc := fmt.Sprintf("HTTP %d", re.StatusCode)
	if code != "" {
		desc += " " + string(code)
	}
	wrap := func(sentinel error) error { return objstore.Wrap(sentinel, desc, err) }
	switch code {
	case bloberror.BlobNotFound, bloberror.ContainerNotFound, bloberror.ResourceNotFound:
		return wrap(storage.ErrNotExist)
	case bloberror.BlobAlreadyExists:
		return wrap(storage.ErrExists)
	case bloberror.ConditionNotMet:
		if conditional {
			return wrap(storage.ErrExists)
		}
	case bloberror.AuthenticationFailed, bloberror.InvalidAuthenticationInfo,
		bloberror.NoAuthenticationInformation,
		// Azurite answers a bad signature with AuthorizationFailure;
		// Azure uses it for requests its firewall refuses. Either way
		// this credential cannot work from here, whatever the operation,
		// unlike the permission errors below.
		bloberror.AuthorizationFailure:
		return wrap(storage.ErrAuth)
	case bloberror.AuthorizationPermissionMismatch,
		bloberror.AuthorizationProtocolMismatch, bloberror.AuthorizationResourceTypeMismatch,
		bloberror.AuthorizationServiceMismatch, bloberror.AuthorizationSourceIPMismatch,
		bloberror.InsufficientAccountPermissions, bloberror.AccountIsDisabled,
		bloberror.ContainerDisabled, bloberror.BlobImmutableDueToPolicy,
		codeBlobImmutableDueToLegalHold, bloberror.UnauthorizedBlobOverwrite,
		bloberror.LeaseIDMissing, bloberror.LeaseIDMismatchWithBlobOperation,
		bloberror.SnapshotsPresent, bloberror.BlobArchived, bloberror.BlobBeingRehydrated:
		return wrap(storage.ErrPermission)
	case bloberror.ContainerBeingDeleted, bloberror.AccountBeingCreated,
		bloberror.ServerBusy, bloberror.OperationTimedOut, bloberror.InternalError:
		return &objstore.Error{Msg: desc, Err: err} // transient
	}
	switch {
	case re.StatusCode == http.StatusNotFound:
		return wrap(storage.ErrNotExist)
	case re.StatusCode == http.StatusUnauthorized:
		return wrap(storage.ErrAuth)
	case re.StatusCode == http.StatusForbidden:
		return wrap(storage.ErrPermission)
	case re.StatusCode == http.StatusPreconditionFailed && conditional:
		return wrap(storage.ErrExists)
	case re.StatusCode == http.StatusRequestTimeout, re.StatusCode == http.StatusTooManyRequests,
		re.StatusCode >= 500:
		return &objstore.Error{Msg: desc, Err: err} // transient
	case re.StatusCode >= 400:
		return storage.Permanent(&objstore.Error{Msg: desc, Err: err})
	}
	return &objstore.Error{Msg: desc, Err: err}
}
