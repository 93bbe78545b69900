package gcs

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

// hostileBodies are replies of services that are not Cloud Storage.
var hostileBodies = append(slices.Clip(storagetest.HostileBodies), storagetest.HostileJSON,
	storagetest.HostileBody{Name: "error not an object", ContentType: "application/json", Body: `{"error":"` + storagetest.Secret + `","message":"` + storagetest.Secret + `"}`},
)

// exercise opens a backend on the endpoint (as an emulator) and runs its
// reads; it returns the error of each.
func exercise(t *testing.T, endpoint string) map[string]error {
	t.Helper()
	ctx := t.Context()
	errs := map[string]error{}
	cfg := Config{Bucket: "bkt", Prefix: "repo", EmulatorHost: endpoint, MaxAttempts: 1}
	be, err := Open(ctx, cfg)
	if be != nil {
		_ = be.Close()
	}
	errs["Open"] = err
	be, err = newBackend(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = be.Close() }()
	storagetest.Reads(ctx, be, errs, "")
	return errs
}

// TestHostileReplies: an endpoint that leads to some other HTTP service
// (an internal one, named to read it through error messages) gets errors
// that quote nothing of its replies but still say what happened.
func TestHostileReplies(t *testing.T) {
	storagetest.HostileReplies(t, hostileBodies, exercise, storagetest.CheckReadClass)
}

// TestNotHTTP: an endpoint that leads to a service that does not speak
// HTTP (or not well) gets transient errors that quote nothing it sent.
func TestNotHTTP(t *testing.T) {
	storagetest.NotHTTP(t, storagetest.NotHTTPReplies, exercise)
}

// TestHostileErrorDocument: the reason and message of a JSON error
// document are quoted, the message cleaned and bounded. (Downloads do not
// parse error replies: Load says only the status.)
func TestHostileErrorDocument(t *testing.T) {
	// JSON escapes: a tab, a right-to-left override, a newline.
	long := `Access\tdenied\u202e \n` + strings.Repeat("x", maxMessageLen) + storagetest.Secret
	doc := `{"error":{"code":403,"message":"` + long + `","errors":[{"reason":"forbidden","message":"` + storagetest.Secret + `","domain":"` + storagetest.Secret + `"}],"details":["` + storagetest.Secret + `"]}}`
	u := storagetest.HostileServer(t, http.StatusForbidden, nil, "application/json", doc)
	for op, err := range exercise(t, u) {
		storagetest.CheckQuote(t, op, err)
		storagetest.CheckStatusClass(t, op, http.StatusForbidden, err, false)
		if err != nil && !strings.HasPrefix(op, "Load") && !strings.Contains(err.Error(), "(HTTP 403 forbidden: Access denied xxx") {
			t.Errorf("%s = %q, want the reason and the message, cut short", op, err)
		}
	}
	// A reason that is no code is left out.
	doc = `{"error":{"code":401,"message":"Invalid Credentials","errors":[{"reason":"a b ` + storagetest.Secret + `"}]}}`
	u = storagetest.HostileServer(t, http.StatusUnauthorized, nil, "application/json", doc)
	for op, err := range exercise(t, u) {
		storagetest.CheckQuote(t, op, err)
		if !errors.Is(err, storage.ErrAuth) || !strings.HasPrefix(op, "Load") && !strings.Contains(err.Error(), "(HTTP 401: Invalid Credentials)") {
			t.Errorf("%s = %v, want ErrAuth with the message", op, err)
		}
	}
}
