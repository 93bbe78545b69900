package azure

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

// hostileBodies are replies of services that are not Azure Blob Storage.
var hostileBodies = append(slices.Clip(storagetest.HostileBodies), storagetest.HostileJSON,
	storagetest.HostileBody{Name: "wrapped code", ContentType: "application/json", Body: `{"error":{"code":"` + storagetest.Secret + `","message":"` + storagetest.Secret + `"}}`},
	storagetest.HostileBody{Name: "azure-shaped body", ContentType: "application/xml", Body: `<?xml version="1.0" encoding="utf-8"?><Error><Code>` + storagetest.Secret + `</Code><Message>` + storagetest.Secret + `</Message></Error>`},
)

// exercise opens a backend on the endpoint (with Azurite's well-known
// account) and runs its reads; it returns the error of each.
func exercise(t *testing.T, endpoint string) map[string]error {
	t.Helper()
	ctx := t.Context()
	errs := map[string]error{}
	cfg := Config{
		Container: "bkt", Prefix: "repo", Account: "devstoreaccount1", Endpoint: endpoint + "/devstoreaccount1/",
		Key:        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
		MaxRetries: -1,
	}
	be, err := Open(ctx, cfg)
	if be != nil {
		_ = be.Close()
	}
	errs["Open"] = err
	be, err = newBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = be.Close() }()
	storagetest.Reads(ctx, be, errs, "")
	return errs
}

// TestHostileReplies: an endpoint that leads to some other HTTP service
// (an internal one, named to read it through error messages) gets errors
// that quote nothing of its replies (azcore finds a code in any body that
// holds <code>word</code> or a "code" member: it is not used) but still
// say what happened.
func TestHostileReplies(t *testing.T) {
	storagetest.HostileReplies(t, hostileBodies, exercise, storagetest.CheckReadClass)
}

// TestNotHTTP: an endpoint that leads to a service that does not speak
// HTTP (or not well) gets transient errors that quote nothing it sent.
func TestNotHTTP(t *testing.T) {
	storagetest.NotHTTP(t, storagetest.NotHTTPReplies, exercise)
}

// TestHostileErrorCode: the code of the x-ms-error-code header is quoted
// and classifies the error, when it is a code.
func TestHostileErrorCode(t *testing.T) {
	u := storagetest.HostileServer(t, http.StatusForbidden, http.Header{"X-Ms-Error-Code": {"AuthenticationFailed"}}, "application/xml", storagetest.Secret)
	for op, err := range exercise(t, u) {
		storagetest.CheckQuote(t, op, err)
		if !errors.Is(err, storage.ErrAuth) || !strings.Contains(err.Error(), "(HTTP 403 AuthenticationFailed)") {
			t.Errorf("%s = %v, want ErrAuth with the code", op, err)
		}
	}
	u = storagetest.HostileServer(t, http.StatusForbidden, http.Header{"X-Ms-Error-Code": {"not a code " + storagetest.Secret}}, "application/xml", storagetest.Secret)
	for op, err := range exercise(t, u) {
		storagetest.CheckQuote(t, op, err)
		storagetest.CheckStatusClass(t, op, http.StatusForbidden, err, false)
	}
}
