package s3

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// secret stands for the content of an internal HTTP service that a
// tenant's endpoint leads to: no error may quote it.
const secret = "S3CR3T_internal_7f3a9c"

// hostileBodies are replies of services that are not an S3 store.
var hostileBodies = []struct{ name, contentType, body string }{
	{"text", "text/plain", "db password: " + secret + "\n"},
	{"html", "text/html", "<html><body><h1>Admin</h1><code>" + secret + "</code></body></html>"},
	{"json", "application/json", `{"code":"` + secret + `","message":"` + secret + `","error":"` + secret + `"}`},
	{"xml", "application/xml", `<?xml version="1.0"?><Response><Code>` + secret + `</Code><Message>` + secret + `</Message></Response>`},
	{"error without code", "application/xml", `<Error><Code>not a code ` + secret + `</Code><Message>` + secret + `</Message></Error>`},
}

var hostileStatuses = []int{200, 400, 401, 403, 404, 409, 500, 503}

// notHTTPReplies are replies of services that do not speak HTTP, or not
// well: net/http's errors about them quote what arrived.
var notHTTPReplies = []struct{ name, reply string }{
	{"banner", "SSH-2.0-OpenSSH_9.2 " + secret + "\r\n"},
	{"bad status", "HTTP/1.1 " + secret + " OK\r\n\r\n"},
	{"bad version", secret + "/1.1 500 Internal Server Error\r\n\r\n"},
	{"bad header", "HTTP/1.1 500 Internal Server Error\r\n" + secret + "\r\n\r\n"},
	{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: " + secret + "\r\n\r\n"},
	{"reason phrase", "HTTP/1.1 503 " + secret + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
}

// hostileServer answers every request with status, header and body.
func hostileServer(t *testing.T, status int, header http.Header, contentType, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// rawServer answers every connection with reply, after the request's
// header, and closes it.
func rawServer(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = c.Close() }()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 0, 4096)
				for !bytes.Contains(buf, []byte("\r\n\r\n")) && len(buf) < cap(buf) {
					n, err := c.Read(buf[len(buf):cap(buf)])
					buf = buf[:len(buf)+n]
					if err != nil {
						return
					}
				}
				_, _ = io.WriteString(c, reply)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// checkQuote fails when err quotes the secret or text that is not clean
// (more than one line, control or format characters, invalid UTF-8).
func checkQuote(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, secret) || strings.Contains(msg, "S3CR3T") {
		t.Errorf("%s: the error quotes the reply: %q", op, msg)
	}
	if !utf8.ValidString(msg) || strings.ContainsFunc(msg, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
		t.Errorf("%s: the error holds control characters or invalid UTF-8: %q", op, msg)
	}
}

// checkClass checks that err stands for status: 401 ErrAuth, 403
// ErrPermission, 404 ErrNotExist, other 4xx permanent, 5xx transient.
// Some operations take some refusals for an answer (Open: a missing
// bucket, a missing feature), so nil is fine for them unless must.
func checkClass(t *testing.T, op string, status int, err error, must bool) {
	t.Helper()
	if err == nil {
		if must || status >= 500 || status == http.StatusUnauthorized {
			t.Errorf("%s: no error for a %d reply", op, status)
		}
		return
	}
	want := map[int]error{401: storage.ErrAuth, 403: storage.ErrPermission, 404: storage.ErrNotExist}[status]
	switch {
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s = %v, want %v", op, err, want)
	case storage.IsPermanent(err) != (status < 500):
		t.Errorf("%s = %v: IsPermanent = %v for a %d reply", op, err, storage.IsPermanent(err), status)
	}
}

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
		h := storage.Handle{Type: storage.KeyFile, Name: "k1"}
		_, errs["Stat "+region] = be.Stat(ctx, h)
		_, errs["Load "+region] = storage.LoadAll(ctx, be, h)
		errs["Load range "+region] = be.Load(ctx, h, 10, 5, func(io.Reader) error { return nil })
		errs["List "+region] = be.List(ctx, storage.KeyFile, func(storage.FileInfo) error { return nil })
		_, errs["RetainedUntil "+region] = be.RetainedUntil(ctx, h)
		_ = be.Close()
	}
	return errs
}

// TestHostileReplies: an endpoint that leads to some other HTTP service
// (an internal one, named to read it through error messages) gets errors
// that quote nothing of its replies but still say what happened.
func TestHostileReplies(t *testing.T) {
	for _, body := range hostileBodies {
		for _, status := range hostileStatuses {
			t.Run(body.name+"/"+strconv.Itoa(status), func(t *testing.T) {
				t.Parallel()
				u := hostileServer(t, status, nil, body.contentType, body.body)
				for op, err := range exercise(t, u) {
					checkQuote(t, op, err)
					if status == http.StatusOK {
						continue // what a 200 means differs by operation
					}
					must := strings.HasPrefix(op, "Stat") || strings.HasPrefix(op, "Load")
					checkClass(t, op, status, err, must)
				}
			})
		}
	}
}

// TestNotHTTP: an endpoint that leads to a service that does not speak
// HTTP (or not well) gets transient errors that quote nothing it sent.
func TestNotHTTP(t *testing.T) {
	for _, tc := range notHTTPReplies {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := rawServer(t, tc.reply)
			for op, err := range exercise(t, u) {
				checkQuote(t, op, err)
				if err == nil || storage.IsPermanent(err) {
					t.Errorf("%s = %v, want a transient error", op, err)
				}
			}
		})
	}
}

// TestHostileErrorDocument: the code and message of an S3 error document
// are quoted, the message cleaned and bounded.
func TestHostileErrorDocument(t *testing.T) {
	long := "Access\tDenied\u202e \n" + strings.Repeat("x", maxMessageLen) + secret
	doc := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>` + long + `</Message><Key>` + secret + `</Key><RequestId>` + secret + `</RequestId></Error>`
	u := hostileServer(t, http.StatusForbidden, nil, "application/xml", doc)
	// HEAD replies (Stat, and RetainedUntil, which starts with one) have
	// no body: minio-go makes their code from the status.
	head := func(op string) bool { return strings.HasPrefix(op, "Stat") || strings.HasPrefix(op, "RetainedUntil") }
	for op, err := range exercise(t, u) {
		checkQuote(t, op, err)
		checkClass(t, op, http.StatusForbidden, err, false)
		if err != nil && !head(op) && !strings.Contains(err.Error(), "AccessDenied: Access Denied xxx") {
			t.Errorf("%s = %q, want the code and the message, cut short", op, err)
		}
	}
	// What a store says is worth quoting.
	doc = `<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>`
	u = hostileServer(t, http.StatusForbidden, nil, "application/xml", doc)
	for op, err := range exercise(t, u) {
		if head(op) {
			continue
		}
		if !errors.Is(err, storage.ErrAuth) || !strings.Contains(err.Error(), "(InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records., HTTP 403)") {
			t.Errorf("%s = %v, want ErrAuth with the store's code and message", op, err)
		}
	}
	// MinIO's error headers of HEAD replies: kept only when clean.
	hdr := http.Header{"X-Minio-Error-Code": {"not a code " + secret}, "X-Minio-Error-Desc": {secret}}
	u = hostileServer(t, http.StatusForbidden, hdr, "text/plain", secret)
	for op, err := range exercise(t, u) {
		checkQuote(t, op, err)
		checkClass(t, op, http.StatusForbidden, err, false)
	}
}

func TestErrorDoc(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>k</Key><RequestId>1</RequestId></Error>`,
			`<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`},
		{`<?xml version="1.0"?>` + "\n" + `<Error><Code>AuthorizationHeaderMalformed</Code><Region>eu-west-1</Region></Error>`,
			`<Error><Code>AuthorizationHeaderMalformed</Code><Region>eu-west-1</Region></Error>`},
		{`<Error><Code>X</Code><Region>` + secret + `</Region></Error>`, `<Error><Code>X</Code></Error>`},
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
