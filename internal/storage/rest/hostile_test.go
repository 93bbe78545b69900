package rest

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

// hostileBodies are replies of services that are not a bunker server.
var hostileBodies = append(slices.Clip(storagetest.HostileBodies),
	storagetest.HostileBody{Name: "json", ContentType: "application/json", Body: `{"code":"` + storagetest.Secret + `","message":"` + storagetest.Secret + `","error":{"message":"` + storagetest.Secret + `"}}`},
)

// notHTTPReplies are storagetest's and two more: a control character in
// a header value, an unknown transfer encoding.
var notHTTPReplies = append(slices.Clip(storagetest.NotHTTPReplies),
	storagetest.NotHTTPReply{Name: "bad header value", Reply: "HTTP/1.1 500 Internal Server Error\r\nX-Note: \x01" + storagetest.Secret + "\r\n\r\n"},
	storagetest.NotHTTPReply{Name: "bad encoding", Reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: " + storagetest.Secret + "\r\n\r\n"},
)

// checkClass checks that err stands for status as
// storagetest.CheckStatusClass has it, and 409 for ErrExists; every
// operation must fail.
func checkClass(t *testing.T, op string, status int, err error) {
	t.Helper()
	storagetest.CheckStatusClass(t, op, status, err, true)
	if status == http.StatusConflict && err != nil && !errors.Is(err, storage.ErrExists) {
		t.Errorf("%s = %v, want %v", op, err, storage.ErrExists)
	}
}

// exercise opens a backend on the endpoint and runs its reads; it
// returns the error of each.
func exercise(t *testing.T, endpoint string) map[string]error {
	t.Helper()
	ctx := t.Context()
	u := parseURL(t, endpoint)
	cfg := Config{URL: u, Repo: "/r", User: "alice", Password: "pw"}
	errs := map[string]error{}
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

// TestHostileReplies: a URL that leads to some other HTTP service (an
// internal one, named to read it through error messages) gets errors
// that quote nothing of its replies but still say what happened.
func TestHostileReplies(t *testing.T) {
	storagetest.HostileReplies(t, hostileBodies, exercise, checkClass)
	// A 200 reply that is not the protocol's JSON says so, quoting
	// nothing.
	u := storagetest.HostileServer(t, http.StatusOK, nil, "text/html", hostileBodies[1].Body)
	errs := exercise(t, u)
	for _, op := range []string{"Open", "List"} {
		if err := errs[op]; !errors.Is(err, errNotBunker) {
			t.Errorf("%s of an HTML page = %v, want an error saying it is not a bunker server", op, err)
		}
	}
}

// TestNotHTTP: a URL that leads to a service that does not speak HTTP
// (or not well) gets transient errors that quote nothing it sent.
func TestNotHTTP(t *testing.T) {
	storagetest.NotHTTP(t, notHTTPReplies, exercise)
}

// TestHostileErrorHeader: the message of the server's Bunker-Error header
// is quoted, cleaned and bounded.
func TestHostileErrorHeader(t *testing.T) {
	// net/http refuses header values with control characters other
	// than tab, but passes bytes above 0x7f.
	long := "refused\t\u202e \xff" + strings.Repeat("x", MaxErrorLen) + storagetest.Secret
	hdr := http.Header{HeaderError: {long}}
	u := storagetest.HostileServer(t, http.StatusForbidden, hdr, "text/plain", storagetest.Secret)
	for op, err := range exercise(t, u) {
		storagetest.CheckQuote(t, op, err)
		checkClass(t, op, http.StatusForbidden, err)
		if !strings.Contains(err.Error(), ": refused") || !strings.Contains(err.Error(), "xxx…") {
			t.Errorf("%s = %q, want the header's message, cut short", op, err)
		}
	}
	// A plain message is quoted as it is.
	u = storagetest.HostileServer(t, http.StatusForbidden, http.Header{HeaderError: {"append-only: keys/k1 may not be deleted"}}, "text/plain", storagetest.Secret)
	if _, err := Open(t.Context(), Config{URL: parseURL(t, u), Repo: "/r"}); err == nil || !strings.HasSuffix(err.Error(), "(server replied 403 Forbidden: append-only: keys/k1 may not be deleted)") {
		t.Errorf("Open = %v, want the server's message", err)
	}
}

// parseURL parses the URL of a test server.
func parseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
