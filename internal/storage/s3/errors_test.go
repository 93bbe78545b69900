package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/bunkerbackup/bunker/internal/storage"
)

func TestMapErr(t *testing.T) {
	reply := func(code string, status int, msg string) error {
		return minio.ErrorResponse{Code: code, StatusCode: status, Message: msg, BucketName: "bkt", Key: "k"}
	}
	transient := errors.New("transient")
	tests := []struct {
		name string
		err  error
		want error // a sentinel, transient (not permanent) or nil for storage.Permanent
	}{
		{"no such key", reply("NoSuchKey", 404, "The specified key does not exist."), storage.ErrNotExist},
		{"no such bucket", reply("NoSuchBucket", 404, ""), storage.ErrNotExist},
		{"no such version", reply("NoSuchVersion", 404, ""), storage.ErrNotExist},
		{"HEAD 404", reply("", 404, ""), storage.ErrNotExist},
		{"precondition", reply("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold"), storage.ErrExists},
		{"bad key", reply("InvalidAccessKeyId", 403, ""), storage.ErrAuth},
		{"bad signature", reply("SignatureDoesNotMatch", 403, ""), storage.ErrAuth},
		{"expired", reply("ExpiredToken", 400, ""), storage.ErrAuth},
		{"versitygw unknown user", reply("XAdminUserNotFound", 404, ""), storage.ErrAuth},
		{"401", reply("", 401, ""), storage.ErrAuth},
		{"access denied", reply("AccessDenied", 403, "Access Denied"), storage.ErrPermission},
		{"HEAD 403", reply("", 403, ""), storage.ErrPermission},
		{"object locked", reply("ObjectLocked", 400, ""), storage.ErrPermission},
		{"invalid request on a locked object", reply("InvalidRequest", 400, "Object is WORM protected and cannot be overwritten"), storage.ErrPermission},
		{"invalid request about retention", reply("InvalidRequest", 400, "the object is under retention"), storage.ErrPermission},
		{"quota", reply("QuotaExceeded", 403, ""), storage.ErrNoSpace},
		{"minio full", reply("XMinioStorageFull", 507, ""), storage.ErrNoSpace},
		{"internal", reply("InternalError", 500, ""), transient},
		{"unavailable", reply("ServiceUnavailable", 503, ""), transient},
		{"slow down", reply("SlowDown", 503, ""), transient},
		{"throttled 429", reply("", 429, ""), transient},
		{"request timeout", reply("RequestTimeout", 400, ""), transient},
		{"bad request", reply("InvalidArgument", 400, "bad"), nil},
		{"malformed xml", reply("MalformedXML", 400, ""), nil},
		{"entity too large", reply("EntityTooLarge", 400, ""), nil},
		{"not implemented", reply("NotImplemented", 501, ""), nil},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, transient},
		{"unexpected EOF", io.ErrUnexpectedEOF, transient},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mapErr(tc.err)
			switch {
			case tc.want == transient:
				if storage.IsPermanent(got) {
					t.Errorf("mapErr(%v) = %v, permanent; want transient", tc.err, got)
				}
			case tc.want == nil:
				if !storage.IsPermanent(got) {
					t.Errorf("mapErr(%v) = %v, want permanent", tc.err, got)
				}
				for _, s := range []error{storage.ErrNotExist, storage.ErrExists, storage.ErrPermission, storage.ErrAuth, storage.ErrNoSpace} {
					if errors.Is(got, s) {
						t.Errorf("mapErr(%v) = %v, matches %v", tc.err, got, s)
					}
				}
			default:
				if !errors.Is(got, tc.want) || !storage.IsPermanent(got) {
					t.Errorf("mapErr(%v) = %v, want %v", tc.err, got, tc.want)
				}
			}
			var resp minio.ErrorResponse
			if errors.As(tc.err, &resp) {
				if !errors.As(got, &resp) {
					t.Errorf("mapErr(%v) lost the reply", tc.err)
				}
				if resp.Code != "" && !strings.Contains(got.Error(), resp.Code) {
					t.Errorf("mapErr(%v) = %q, does not name the code", tc.err, got)
				}
			}
		})
	}
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) != nil")
	}
}
