package restserver

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bunkerbackup/bunker/internal/storage/rest"
)

// FuzzParseRange: any Range header is parsed or refused, never a panic,
// and an accepted range is not negative.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-", "bytes=0-9", "bytes=5-4", "bytes=-5", "bytes=9223372036854775807-", "bytes=0-1,2-3", "items=0-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		off, n, err := parseRange(v)
		if err == nil && (off < 0 || n < 0) {
			t.Fatalf("parseRange(%q) = %d, %d", v, off, n)
		}
	})
}

// FuzzParseHtpasswd: any htpasswd file is loaded or refused with an
// error, never a panic.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add("alice:$2y$05$abcdefghijklmnopqrstuu5Ez1b1cYQkFJQn1fDjq8xS6RM4cb8ai\n")
	f.Add("bob:{SHA}abc\n# comment\n\n")
	f.Add(":::\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseHtpasswd(strings.NewReader(s))
	})
}

// FuzzHandler feeds arbitrary requests (method, path and query, one
// header, body, claimed length) to the server's handler, without
// authentication, append-only, and with users and private repositories:
// it must never panic and never create anything outside its directory.
func FuzzHandler(f *testing.F) {
	root := f.TempDir()
	dir := filepath.Join(root, "srv")
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		f.Fatal(err)
	}
	users, err := ParseHtpasswd(strings.NewReader("alice:" + string(h) + "\n"))
	if err != nil {
		f.Fatal(err)
	}
	var servers []*Server
	for _, o := range []Options{
		{NoAuth: true},
		{NoAuth: true, AppendOnly: true},
		{Users: users, PrivateRepos: true, AppendOnly: true},
	} {
		o.Dir, o.NoTLS, o.MaxRequestSize, o.TransferWindow = dir, true, 1<<20, time.Hour
		s, err := New(o)
		if err != nil {
			f.Fatal(err)
		}
		servers = append(servers, s)
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw"))
	pack := strings.Repeat("ab", 32)
	for _, s := range []struct {
		mode                 uint8
		method, target, k, v string
		body                 string
	}{
		{0, "POST", "/r/?create=true", "", "", ""},
		{0, "POST", "/r/config", "If-None-Match", "*", "config"},
		{1, "POST", "/r/packs/" + pack, "", "", "pack"},
		{1, "POST", "/r/maint/lease", "", "", "lease"},
		{1, "DELETE", "/r/snapshots/" + pack, "", "", ""},
		{0, "GET", "/r/packs/", "", "", ""},
		{0, "GET", "/r/config", "Range", "bytes=2-", ""},
		{0, "HEAD", "/r/config", "", "", ""},
		{2, "POST", "/alice/r/?create=true", "Authorization", auth, ""},
		{2, "POST", "/alice/r/sessions/s-0123456789abcdef01234567", "Authorization", auth, "s"},
		{2, "GET", "/metrics", "Authorization", auth, ""},
		{0, "PUT", "/../outside", "", "", "x"},
		{0, "POST", "/%2e%2e/config", "", "", "x"},
	} {
		f.Add(s.mode, s.method, s.target, s.k, s.v, []byte(s.body), int64(-2))
	}
	f.Fuzz(func(t *testing.T, mode uint8, method, target, key, value string, body []byte, claimed int64) {
		s := servers[int(mode)%len(servers)]
		path, query, _ := strings.Cut(target, "?")
		r := &http.Request{
			Method:     method,
			URL:        &url.URL{Path: path, RawQuery: query},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
			Header:     http.Header{},
			Body:       io.NopCloser(bytes.NewReader(body)),
			Host:       "127.0.0.1",
			RemoteAddr: "127.0.0.1:1",
			RequestURI: target,
		}
		// -2 (the seeds) sends the body's own length; others claim any.
		r.ContentLength = claimed
		if claimed == -2 {
			r.ContentLength = int64(len(body))
		}
		if key != "" {
			r.Header.Set(key, value)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		// Every error reply carries its message in a header that clients
		// may quote: printable ASCII, bounded.
		if rec.Code >= 400 {
			v := rec.Header().Get(rest.HeaderError)
			if v == "" || len(v) > rest.MaxErrorLen || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r >= 0x7f }) {
				t.Fatalf("%s %q = %d with Bunker-Error %q, want a message of printable ASCII, at most %d bytes", method, target, rec.Code, v, rest.MaxErrorLen)
			}
		}
		ents, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != "srv" {
				t.Fatalf("%s %q created %s outside the served directory", method, target, e.Name())
			}
		}
	})
}
