package gcs

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"syscall"
	"testing"

	"cloud.google.com/go/auth"
	"google.golang.org/api/googleapi"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

func TestMapErr(t *testing.T) {
	api := func(code int, reason string) error {
		e := &googleapi.Error{Code: code, Message: "msg"}
		if reason != "" {
			e.Errors = []googleapi.ErrorItem{{Reason: reason}}
		}
		return fmt.Errorf("lib: %w", e)
	}
	tokenErr := func(code int) error {
		return &auth.Error{Response: &http.Response{StatusCode: code}, Err: errors.New("token")}
	}
	tests := []struct {
		name        string
		err         error
		conditional bool
		sentinel    error
		permanent   bool
	}{
		// A download's 404: the body is not parsed, so no message.
		{"object not exist", &googleapi.Error{Code: 404, Body: storagetest.Secret}, false, storage.ErrNotExist, true},
		{"bucket not exist", fmt.Errorf("x: %w", &googleapi.Error{Code: 404, Message: "The specified bucket does not exist."}), false, storage.ErrNotExist, true},
		{"404", api(404, "notFound"), false, storage.ErrNotExist, true},
		{"412 conditional", api(412, "conditionNotMet"), true, storage.ErrExists, true},
		{"412 unconditional", api(412, "conditionNotMet"), false, nil, true},
		{"401", api(401, "required"), false, storage.ErrAuth, true},
		{"403", api(403, "forbidden"), false, storage.ErrPermission, true},
		{"403 retention", api(403, "retentionPolicyNotMet"), false, storage.ErrPermission, true},
		{"400", api(400, "invalid"), false, nil, true},
		{"416", api(416, ""), false, nil, true},
		{"408", api(408, ""), false, nil, false},
		{"429", api(429, "rateLimitExceeded"), false, nil, false},
		{"503", api(503, "backendError"), false, nil, false},
		{"token refused", tokenErr(401), false, storage.ErrAuth, true},
		{"token bad request", tokenErr(400), false, storage.ErrAuth, true},
		{"token endpoint down", tokenErr(503), false, nil, false},
		{"connection refused", &url.Error{Op: "Get", URL: "http://h/", Err: syscall.ECONNREFUSED}, false, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := mapErr(tc.err, tc.conditional)
			storagetest.CheckErrorClass(t, tc.err, err, tc.sentinel, tc.permanent)
			if !errors.Is(err, errors.Unwrap(tc.err)) && !errors.Is(err, tc.err) {
				t.Errorf("mapErr(%v) = %v lost the cause", tc.err, err)
			}
		})
	}
	if mapErr(nil, false) != nil {
		t.Error("mapErr(nil) != nil")
	}
}
