package azure

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

func TestMapErr(t *testing.T) {
	resp := func(status int, code string) error {
		return fmt.Errorf("sdk: %w", &azcore.ResponseError{StatusCode: status, ErrorCode: code})
	}
	tests := []struct {
		name        string
		err         error
		conditional bool
		sentinel    error // nil: none
		permanent   bool
	}{
		{"blob not found", resp(404, "BlobNotFound"), false, storage.ErrNotExist, true},
		{"container not found", resp(404, "ContainerNotFound"), false, storage.ErrNotExist, true},
		{"HEAD 404 without code", resp(404, ""), false, storage.ErrNotExist, true},
		{"already exists", resp(409, "BlobAlreadyExists"), true, storage.ErrExists, true},
		{"condition not met, conditional", resp(412, "ConditionNotMet"), true, storage.ErrExists, true},
		{"412 without code, conditional", resp(412, ""), true, storage.ErrExists, true},
		{"condition not met, unconditional", resp(412, "ConditionNotMet"), false, nil, true},
		{"bad signature", resp(403, "AuthenticationFailed"), false, storage.ErrAuth, true},
		{"bad auth header", resp(400, "InvalidAuthenticationInfo"), false, storage.ErrAuth, true},
		{"401", resp(401, ""), false, storage.ErrAuth, true},
		{"SAS lacks permission", resp(403, "AuthorizationPermissionMismatch"), false, storage.ErrPermission, true},
		{"firewall or Azurite bad signature", resp(403, "AuthorizationFailure"), false, storage.ErrAuth, true},
		{"immutable", resp(409, "BlobImmutableDueToPolicy"), false, storage.ErrPermission, true},
		{"legal hold", resp(409, "BlobImmutableDueToLegalHold"), false, storage.ErrPermission, true},
		{"lease", resp(412, "LeaseIdMissing"), false, storage.ErrPermission, true},
		{"403 without code", resp(403, ""), false, storage.ErrPermission, true},
		{"bad request", resp(400, "InvalidHeaderValue"), false, nil, true},
		{"md5 mismatch", resp(400, "Md5Mismatch"), false, nil, true},
		{"busy", resp(503, "ServerBusy"), false, nil, false},
		{"internal", resp(500, "InternalError"), false, nil, false},
		{"throttled", resp(429, ""), false, nil, false},
		{"timeout", resp(408, ""), false, nil, false},
		{"container being deleted", resp(409, "ContainerBeingDeleted"), false, nil, false},
		{"connection refused", &url.Error{Op: "Put", URL: "http://h/c/b?sig=secret", Err: syscall.ECONNREFUSED}, false, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := mapErr(tc.err, tc.conditional)
			storagetest.CheckErrorClass(t, tc.err, err, tc.sentinel, tc.permanent)
			var re *azcore.ResponseError
			if strings.HasPrefix(tc.name, "connection") {
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("mapErr(%v) = %v lost the cause", tc.err, err)
				}
			} else if !errors.As(err, &re) {
				t.Errorf("mapErr(%v) = %v lost the SDK error", tc.err, err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("mapErr(%v) = %q shows the SAS signature", tc.err, err)
			}
		})
	}
	if mapErr(nil, false) != nil {
		t.Error("mapErr(nil) != nil")
	}
}
