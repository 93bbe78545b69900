package s3

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

// hostileBodies are replies of services that are not an S3 store.
var hostileBodies = append(slices.Clip(storagetest.HostileBodies), storagetest.HostileJSON,
	storagetest.HostileBody{Name: "error without code", ContentType: "application/xml", Body: `<Error><Code>not a code ` + storagetest.Secret + `</Code><Message>` + storagetest.Secret + `</Message></Error>`},
)

// exercise opens a backend on the endpoint and runs its reads (once with
// a region, once letting minio-go ask for it); it returns the error of
// each.
func exercise(t *testing.T, endpoint string) map[string]error {
	t.Helper()
	ctx := t.Context()
	errs := map[string]error{}
	for _, region := range []string{"", "us-east-1"} {
		cfg, err := ParseConfig(endpoint+"/bkt/repo", func(k string) string {
			return map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret-key", "AWS_REGION": region}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		be, err := Open(ctx, cfg)
		if be != nil {
			_ = be.Close()
		}
		errs["Open "+region] = err
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		be, err = newBackend(cfg)
		if err != nil {
			t.Fatal(err)
		}
		be.features.ObjectLock = true // so that RetainedUntil asks the store
		storagetest.Reads(ctx, be, errs, " "+region)
		_, errs["RetainedUntil "+region] = be.RetainedUntil(ctx, storage.Handle{Type: storage.KeyFile, Name: "k1"})
		_ = be.Close()
	}
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

// TestHostileErrorDocument: the code and message of an S3 error document
// are quoted, the message cleaned and bounded.
func TestHostileErrorDocument(t *testing.T) {
	long := "Access\tDenied\u202e \n" + strings.Repeat("x", maxMessageLen) + storagetest.Secret
	doc := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>` + long + `</Message><Key>` + storagetest.Secret + `</Key><RequestId>` + storagetest.Secret + `</RequestId></Error>`
	u := storagetest.HostileServer(t, http.StatusForbidden, nil, "application/xml", doc)
	// HEAD replies (Stat, and RetainedUntil, which starts with one) have
	// no body: minio-go makes their code from the status.
	head := func(op string) bool { return strings.HasPrefix(op, "Stat") || strings.HasPrefix(op, "RetainedUntil") }
	for op, err := range exercise(t, u) {
		storagetest.CheckQuote(t, op, err)
		storagetest.CheckStatusClass(t, op, http.StatusForbidden, err, false)
		if err != nil && !head(op) && !strings.Contains(err.Error(), "AccessDenied: Access Denied xxx") {
			t.Errorf("%s = %q, want the code and the message, cut short", op, err)
		}
	}
	// What a store says is worth quoting.
	doc = `<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>`
	u = storagetest.HostileServer(t, http.StatusForbidden, nil, "application/xml", doc)
	for op, err := range exercise(t, u) {
		if head(op) {
			continue
		}
		if !errors.Is(err, storage.ErrAuth) || !strings.Contains(err.Error(), "(InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records., HTTP 403)") {
			t.Errorf("%s = %v, want ErrAuth with the store's code and message", op, err)
		}
	}
	// MinIO's error headers of HEAD replies: kept only when clean.
	hdr := http.Header{"X-Minio-Error-Code": {"not a code " + storagetest.Secret}, "X-Minio-Error-Desc": {storagetest.Secret}}
	u = storagetest.HostileServer(t, http.StatusForbidden, hdr, "text/plain", storagetest.Secret)
	for op, err := range exercise(t, u) {
		storagetest.CheckQuote(t, op, err)
		storagetest.CheckStatusClass(t, op, http.StatusForbidden, err, false)
	}
}

func TestErrorDoc(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>k</Key><RequestId>1</RequestId></Error>`,
			`<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`},
		{`<?xml version="1.0"?>` + "\n" + `<Error><Code>AuthorizationHeaderMalformed</Code><Region>eu-west-1</Region></Error>`,
			`<Error><Code>AuthorizationHeaderMalformed</Code><Region>eu-west-1</Region></Error>`},
		{`<Error><Code>X</Code><Region>` + storagetest.Secret + `</Region></Error>`, `<Error><Code>X</Code></Error>`},
		{`<Error><Code>two words</Code></Error>`, ``},
		{`<Error><Message>no code</Message></Error>`, ``},
		{`<Other><Code>NoSuchKey</Code></Other>`, ``},
		{`<html>NoSuchKey</html>`, ``},
		{`NoSuchKey`, ``},
		{``, ``},
	} {
		if got := string(errorDoc([]byte(tc.in))); got != tc.want {
			t.Errorf("errorDoc(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
