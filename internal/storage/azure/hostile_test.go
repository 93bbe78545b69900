package azure

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

// hostileBodies are replies of services that are not Azure Blob Storage.
var hostileBodies = []struct{ name, contentType, body string }{
	{"text", "text/plain", "db password: " + secret + "\n"},
	{"html", "text/html", "<html><body><h1>Admin</h1><code>" + secret + "</code></body></html>"},
	{"json", "application/json", `{"code":"` + secret + `","message":"` + secret + `","error":"` + secret + `"}`},
	{"xml", "application/xml", `<?xml version="1.0"?><Response><Code>` + secret + `</Code><Message>` + secret + `</Message></Response>`},
	{"wrapped code", "application/json", `{"error":{"code":"` + secret + `","message":"` + secret + `"}}`},
	{"azure-shaped body", "application/xml", `<?xml version="1.0" encoding="utf-8"?><Error><Code>` + secret + `</Code><Message>` + secret + `</Message></Error>`},
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
	h := storage.Handle{Type: storage.KeyFile, Name: "k1"}
	_, errs["Stat"] = be.Stat(ctx, h)
	_, errs["Load"] = storage.LoadAll(ctx, be, h)
	errs["Load range"] = be.Load(ctx, h, 10, 5, func(io.Reader) error { return nil })
	errs["List"] = be.List(ctx, storage.KeyFile, func(storage.FileInfo) error { return nil })
	return errs
}

// TestHostileReplies: an endpoint that leads to some other HTTP service
// (an internal one, named to read it through error messages) gets errors
// that quote nothing of its replies (azcore finds a code in any body that
// holds <code>word</code> or a "code" member: it is not used) but still
// say what happened.
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
					checkClass(t, op, status, err, strings.HasPrefix(op, "Stat") || strings.HasPrefix(op, "Load"))
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

// TestHostileErrorCode: the code of the x-ms-error-code header is quoted
// and classifies the error, when it is a code.
func TestHostileErrorCode(t *testing.T) {
	u := hostileServer(t, http.StatusForbidden, http.Header{"X-Ms-Error-Code": {"AuthenticationFailed"}}, "application/xml", secret)
	for op, err := range exercise(t, u) {
		checkQuote(t, op, err)
		if !errors.Is(err, storage.ErrAuth) || !strings.Contains(err.Error(), "(HTTP 403 AuthenticationFailed)") {
			t.Errorf("%s = %v, want ErrAuth with the code", op, err)
		}
	}
	u = hostileServer(t, http.StatusForbidden, http.Header{"X-Ms-Error-Code": {"not a code " + secret}}, "application/xml", secret)
	for op, err := range exercise(t, u) {
		checkQuote(t, op, err)
		checkClass(t, op, http.StatusForbidden, err, false)
	}
}
