package rest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
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
// tenant's repository URL leads to: no error may quote it.
const secret = "S3CR3T_internal_7f3a9c"

// hostileBodies are replies of services that are not a bunker server.
var hostileBodies = []struct{ name, contentType, body string }{
	{"text", "text/plain", "db password: " + secret + "\n"},
	{"html", "text/html", "<html><body><h1>Admin</h1><code>" + secret + "</code></body></html>"},
	{"json", "application/json", `{"code":"` + secret + `","message":"` + secret + `","error":{"message":"` + secret + `"}}`},
	{"xml", "application/xml", `<?xml version="1.0"?><Response><Code>` + secret + `</Code><Message>` + secret + `</Message></Response>`},
}

var hostileStatuses = []int{200, 400, 401, 403, 404, 409, 500, 503}

// hostileServer answers every request with status, header and body.
func hostileServer(t *testing.T, status int, header http.Header, contentType, body string) *url.URL {
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
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// notHTTPReplies are replies of services that do not speak HTTP, or not
// well: net/http's errors about them quote what arrived.
var notHTTPReplies = []struct{ name, reply string }{
	{"banner", "SSH-2.0-OpenSSH_9.2 " + secret + "\r\n"},
	{"bad status", "HTTP/1.1 " + secret + " OK\r\n\r\n"},
	{"bad version", secret + "/1.1 500 Internal Server Error\r\n\r\n"},
	{"bad header", "HTTP/1.1 500 Internal Server Error\r\n" + secret + "\r\n\r\n"},
	{"bad header value", "HTTP/1.1 500 Internal Server Error\r\nX-Note: \x01" + secret + "\r\n\r\n"},
	{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: " + secret + "\r\n\r\n"},
	{"bad encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: " + secret + "\r\n\r\n"},
	{"reason phrase", "HTTP/1.1 503 " + secret + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
}

// rawServer answers every connection with reply, after the request's
// header, and closes it.
func rawServer(t *testing.T, reply string) *url.URL {
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
	return &url.URL{Scheme: "http", Host: ln.Addr().String()}
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
// ErrPermission, 404 ErrNotExist, 409 ErrExists, other 4xx permanent,
// 5xx transient.
func checkClass(t *testing.T, op string, status int, err error) {
	t.Helper()
	want := map[int]error{401: storage.ErrAuth, 403: storage.ErrPermission, 404: storage.ErrNotExist, 409: storage.ErrExists}[status]
	switch {
	case err == nil:
		t.Errorf("%s: no error for a %d reply", op, status)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s = %v, want %v", op, err, want)
	case storage.IsPermanent(err) != (status < 500):
		t.Errorf("%s = %v: IsPermanent = %v for a %d reply", op, err, storage.IsPermanent(err), status)
	}
}

// exercise opens a backend on u and runs its reads; it returns the
// error of each.
func exercise(t *testing.T, u *url.URL) map[string]error {
	t.Helper()
	ctx := t.Context()
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
	h := storage.Handle{Type: storage.KeyFile, Name: "k1"}
	_, errs["Stat"] = be.Stat(ctx, h)
	_, errs["Load"] = storage.LoadAll(ctx, be, h)
	errs["Load range"] = be.Load(ctx, h, 10, 5, func(io.Reader) error { return nil })
	errs["List"] = be.List(ctx, storage.KeyFile, func(storage.FileInfo) error { return nil })
	return errs
}

// TestHostileReplies: a URL that leads to some other HTTP service (an
// internal one, named to read it through error messages) gets errors
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
					checkClass(t, op, status, err)
				}
			})
		}
	}
	// A 200 reply that is not the protocol's JSON says so, quoting
	// nothing.
	u := hostileServer(t, http.StatusOK, nil, "text/html", hostileBodies[1].body)
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

// TestHostileErrorHeader: the message of the server's Bunker-Error header
// is quoted, cleaned and bounded.
func TestHostileErrorHeader(t *testing.T) {
	// net/http refuses header values with control characters other
	// than tab, but passes bytes above 0x7f.
	long := "refused\t\u202e \xff" + strings.Repeat("x", MaxErrorLen) + secret
	hdr := http.Header{HeaderError: {long}}
	u := hostileServer(t, http.StatusForbidden, hdr, "text/plain", secret)
	for op, err := range exercise(t, u) {
		checkQuote(t, op, err)
		checkClass(t, op, http.StatusForbidden, err)
		if !strings.Contains(err.Error(), ": refused") || !strings.Contains(err.Error(), "xxx…") {
			t.Errorf("%s = %q, want the header's message, cut short", op, err)
		}
	}
	// A plain message is quoted as it is.
	u = hostileServer(t, http.StatusForbidden, http.Header{HeaderError: {"append-only: keys/k1 may not be deleted"}}, "text/plain", secret)
	if _, err := Open(t.Context(), Config{URL: u, Repo: "/r"}); err == nil || !strings.HasSuffix(err.Error(), "(server replied 403 Forbidden: append-only: keys/k1 may not be deleted)") {
		t.Errorf("Open = %v, want the server's message", err)
	}
}
