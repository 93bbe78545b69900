package storagetest

import (
	"bytes"
	"context"
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

// The helpers below are the scaffolding of the hostile-reply tests of
// the backends that talk HTTP (rest, s3, gcs, azure): a tenant's
// endpoint may lead to some other service (an internal one, named to
// read it through error messages), and no error may quote what it
// replies. Each backend brings its own exercise function (which opens a
// backend on the endpoint and runs its operations) and the replies that
// could fool its own protocol's parser.

// Secret stands for the content of an internal HTTP service that a
// tenant's endpoint leads to: no error may quote it.
const Secret = "S3CR3T_internal_7f3a9c"

// HostileBody is a reply of a service that is not the store a backend
// expects.
type HostileBody struct{ Name, ContentType, Body string }

// HostileBodies are replies that every backend gets: plain text, an HTML
// page and an XML document that quote the Secret. A backend adds the
// shapes of its own protocol's errors (HostileJSON, say).
var HostileBodies = []HostileBody{
	{"text", "text/plain", "db password: " + Secret + "\n"},
	{"html", "text/html", "<html><body><h1>Admin</h1><code>" + Secret + "</code></body></html>"},
	{"xml", "application/xml", `<?xml version="1.0"?><Response><Code>` + Secret + `</Code><Message>` + Secret + `</Message></Response>`},
}

// HostileJSON is a JSON reply whose code, message and error are the
// Secret.
var HostileJSON = HostileBody{"json", "application/json", `{"code":"` + Secret + `","message":"` + Secret + `","error":"` + Secret + `"}`}

// HostileStatuses are the statuses HostileReplies answers with.
var HostileStatuses = []int{200, 400, 401, 403, 404, 409, 500, 503}

// NotHTTPReply is a reply of a service that does not speak HTTP, or not
// well.
type NotHTTPReply struct{ Name, Reply string }

// NotHTTPReplies are replies that net/http refuses with errors that
// quote what arrived (the Secret).
var NotHTTPReplies = []NotHTTPReply{
	{"banner", "SSH-2.0-OpenSSH_9.2 " + Secret + "\r\n"},
	{"bad status", "HTTP/1.1 " + Secret + " OK\r\n\r\n"},
	{"bad version", Secret + "/1.1 500 Internal Server Error\r\n\r\n"},
	{"bad header", "HTTP/1.1 500 Internal Server Error\r\n" + Secret + "\r\n\r\n"},
	{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: " + Secret + "\r\n\r\n"},
	{"reason phrase", "HTTP/1.1 503 " + Secret + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
}

// HostileServer starts an HTTP server, stopped when t ends, that answers
// every request with status, header, contentType and body; it returns
// the server's URL.
func HostileServer(t *testing.T, status int, header http.Header, contentType, body string) string {
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

// RawServer starts a TCP server, stopped when t ends, that answers every
// connection with reply, after the request's header, and closes it; it
// returns its URL (http://host:port).
func RawServer(t *testing.T, reply string) string {
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

// CheckQuote fails when err, the error of op, quotes the Secret or text
// that is not clean (more than one line, control or format characters,
// invalid UTF-8). A nil err passes.
func CheckQuote(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, Secret) || strings.Contains(msg, "S3CR3T") {
		t.Errorf("%s: the error quotes the reply: %q", op, msg)
	}
	if !utf8.ValidString(msg) || strings.ContainsFunc(msg, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
		t.Errorf("%s: the error holds control characters or invalid UTF-8: %q", op, msg)
	}
}

// CheckStatusClass checks that err, the error of op, stands for a reply
// of status: 401 ErrAuth, 403 ErrPermission, 404 ErrNotExist, other 4xx
// permanent, 5xx transient. Some operations take some refusals for an
// answer (opening a backend: a missing bucket, a missing feature), so
// nil passes for a 4xx other than 401 unless must.
func CheckStatusClass(t *testing.T, op string, status int, err error, must bool) {
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

// CheckReadClass is CheckStatusClass for the operations Reads names:
// the reads of an object (Stat…, Load…) must fail, the others (List…)
// may take a refusal for an answer.
func CheckReadClass(t *testing.T, op string, status int, err error) {
	t.Helper()
	CheckStatusClass(t, op, status, err, strings.HasPrefix(op, "Stat") || strings.HasPrefix(op, "Load"))
}

// Reads runs the reads of be that the hostile-reply tests check, a Stat,
// a Load, a ranged Load of the key "k1" and a List of keys, and records
// their errors in errs as "Stat"+suffix, "Load"+suffix,
// "Load range"+suffix and "List"+suffix.
func Reads(ctx context.Context, be storage.Backend, errs map[string]error, suffix string) {
	h := storage.Handle{Type: storage.KeyFile, Name: "k1"}
	_, errs["Stat"+suffix] = be.Stat(ctx, h)
	_, errs["Load"+suffix] = storage.LoadAll(ctx, be, h)
	errs["Load range"+suffix] = be.Load(ctx, h, 10, 5, func(io.Reader) error { return nil })
	errs["List"+suffix] = be.List(ctx, storage.KeyFile, func(storage.FileInfo) error { return nil })
}

// Exercise opens a backend on the endpoint at url and runs its
// operations; it returns the error of each, by the operation's name.
type Exercise func(t *testing.T, url string) map[string]error

// HostileReplies runs exercise, in parallel subtests named
// "body/status", against a HostileServer for each of bodies and each of
// HostileStatuses. It checks that no error quotes the reply
// (CheckQuote), and calls check with the errors of the replies other
// than 200 (what a 200 means differs by operation).
func HostileReplies(t *testing.T, bodies []HostileBody, exercise Exercise, check func(t *testing.T, op string, status int, err error)) {
	t.Helper()
	for _, body := range bodies {
		for _, status := range HostileStatuses {
			t.Run(body.Name+"/"+strconv.Itoa(status), func(t *testing.T) {
				t.Parallel()
				u := HostileServer(t, status, nil, body.ContentType, body.Body)
				for op, err := range exercise(t, u) {
					CheckQuote(t, op, err)
					if status == http.StatusOK {
						continue
					}
					check(t, op, status, err)
				}
			})
		}
	}
}

// NotHTTP runs exercise, in parallel subtests named after the replies,
// against a RawServer for each of replies, and checks that every
// operation fails with a transient error that quotes nothing of the
// reply.
func NotHTTP(t *testing.T, replies []NotHTTPReply, exercise Exercise) {
	t.Helper()
	for _, tc := range replies {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			u := RawServer(t, tc.Reply)
			for op, err := range exercise(t, u) {
				CheckQuote(t, op, err)
				if err == nil || storage.IsPermanent(err) {
					t.Errorf("%s = %v, want a transient error", op, err)
				}
			}
		})
	}
}
