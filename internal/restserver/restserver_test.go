package restserver

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bunkerbackup/bunker/internal/storage"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		path    string
		kind    int
		repo    string
		h       storage.Handle
		wantErr bool
	}{
		{path: "/", kind: targetRepo, repo: ""},
		{path: "/r/", kind: targetRepo, repo: "r"},
		{path: "/alice/My.Repo_1-x/", kind: targetRepo, repo: "alice/My.Repo_1-x"},
		{path: "/config", kind: targetObject, h: storage.Handle{Type: storage.ConfigFile}},
		{path: "/r/config", kind: targetObject, repo: "r", h: storage.Handle{Type: storage.ConfigFile}},
		{path: "/keys/", kind: targetList, h: storage.Handle{Type: storage.KeyFile}},
		{path: "/keys", kind: targetList, h: storage.Handle{Type: storage.KeyFile}},
		{path: "/a/b/packs/", kind: targetList, repo: "a/b", h: storage.Handle{Type: storage.PackFile}},
		{path: "/a/packs/0123abc", kind: targetObject, repo: "a", h: storage.Handle{Type: storage.PackFile, Name: "0123abc"}},
		{path: "/maint/lease-1", kind: targetObject, h: storage.Handle{Type: storage.MaintFile, Name: "lease-1"}},
		{path: "/r", wantErr: true},
		{path: "", wantErr: true},
		{path: "r/config", wantErr: true},
		{path: "/../config", wantErr: true},
		{path: "/./config", wantErr: true},
		{path: "/r/keys/..", wantErr: true},
		{path: "/r/keys/.x", wantErr: true},
		{path: "/r/keys/A", wantErr: true},
		{path: "/r/keys/a/", wantErr: true},
		{path: "/r/config/", wantErr: true},
		{path: "/r//keys/", wantErr: true},
		{path: "/keys/keys/", wantErr: true},
		{path: "/metrics/", wantErr: true},
		{path: "/r/keys/" + strings.Repeat("a", 201), wantErr: true},
		{path: "/" + strings.Repeat("s", 65) + "/", wantErr: true},
		{path: "/1/2/3/4/5/6/7/8/9/", wantErr: true},
		{path: "/1/2/3/4/5/6/7/8/", kind: targetRepo, repo: "1/2/3/4/5/6/7/8"},
		{path: "/a b/", wantErr: true},
		{path: "/a\x00/", wantErr: true},
		{path: "/é/", wantErr: true},
		{path: "/" + strings.Repeat("a/", 1100), wantErr: true},
	}
	for _, tc := range tests {
		got, err := parsePath(tc.path)
		if tc.wantErr {
			if err == nil {
				t.Errorf("parsePath(%q) = %+v, want error", tc.path, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parsePath(%q): %v", tc.path, err)
			continue
		}
		if got.kind != tc.kind || strings.Join(got.repo, "/") != tc.repo || got.h != tc.h {
			t.Errorf("parsePath(%q) = %d %q %v, want %d %q %v", tc.path, got.kind, strings.Join(got.repo, "/"), got.h, tc.kind, tc.repo, tc.h)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/", "/r/config", "/a/packs/00ff", "/../x", "/r/keys/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		tg, err := parsePath(p)
		if err != nil {
			return
		}
		for _, s := range tg.repo {
			if s == "" || s[0] == '.' || strings.ContainsAny(s, "/\\\x00") {
				t.Fatalf("parsePath(%q) accepted segment %q", p, s)
			}
		}
		if tg.kind == targetObject && tg.h.Valid() != nil {
			t.Fatalf("parsePath(%q) accepted handle %v", p, tg.h)
		}
	})
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in      string
		off     int64
		length  int
		wantErr bool
	}{
		{in: "bytes=0-0", off: 0, length: 1},
		{in: "bytes=10-19", off: 10, length: 10},
		{in: "bytes=5-", off: 5, length: 0},
		{in: "bytes=-5", wantErr: true},
		{in: "bytes=5-4", wantErr: true},
		{in: "bytes=0-1,2-3", wantErr: true},
		{in: "bytes=x-1", wantErr: true},
		{in: "bytes=-1-2", wantErr: true},
		{in: "chars=0-1", wantErr: true},
		{in: "bytes=0-99999999999999999999", wantErr: true},
	}
	for _, tc := range tests {
		off, length, err := parseRange(tc.in)
		if tc.wantErr != (err != nil) || !tc.wantErr && (off != tc.off || length != tc.length) {
			t.Errorf("parseRange(%q) = %d, %d, %v; want %d, %d, error %v", tc.in, off, length, err, tc.off, tc.length, tc.wantErr)
		}
	}
}

func TestParseHtpasswd(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	good := string(h)
	tests := []struct {
		name, in, wantErr string
	}{
		{"ok", "# users\n\nalice:" + good + "\n", ""},
		{"2y", "alice:" + strings.Replace(good, "$2a$", "$2y$", 1) + "\n", ""},
		{"apr1", "alice:$apr1$abc$def\n", "apr1"},
		{"sha", "alice:{SHA}abcdef=\n", "{SHA}"},
		{"crypt", "alice:abXYZ12345678\n", "crypt or plain"},
		{"sha512 crypt", "alice:$6$salt$hash\n", "$6$"},
		{"argon", "alice:$argon2id$v=19$x\n", "$argon2id$"},
		{"no colon", "alice\n", "line 1"},
		{"empty user", ":" + good + "\n", "line 1"},
		{"duplicate", "alice:" + good + "\nalice:" + good + "\n", "twice"},
		{"malformed bcrypt", "alice:$2y$10$short\n", "malformed"},
		{"empty", "# nothing\n", "no users"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ParseHtpasswd(strings.NewReader(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !u.Check("alice", "pw") || u.Check("alice", "wrong") || u.Check("bob", "pw") {
					t.Errorf("Check gives wrong answers")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseHtpasswd = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestAuthCache(t *testing.T) {
	h, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	u, err := ParseHtpasswd(strings.NewReader("alice:" + string(h)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1e9, 0)
	u.now = func() time.Time { return now }
	if !u.Check("alice", "pw") {
		t.Fatal("right password refused")
	}
	// Within the TTL the cache answers, but only for the same password.
	u.hashes["alice"] = []byte("$2a$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinv")
	if !u.Check("alice", "pw") {
		t.Error("cached password refused")
	}
	if u.Check("alice", "other") {
		t.Error("other password accepted from the cache")
	}
	now = now.Add(authCacheTTL + time.Second)
	if u.Check("alice", "pw") {
		t.Error("expired cache entry accepted without bcrypt")
	}
}

func TestOptionsValidate(t *testing.T) {
	users := &Users{}
	tests := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{"no dir", Options{NoAuth: true}, "--path"},
		{"no users", Options{Dir: "d"}, "--no-auth"},
		{"both", Options{Dir: "d", Users: users, NoAuth: true}, "exclude"},
		{"private without users", Options{Dir: "d", NoAuth: true, PrivateRepos: true}, "--private-repos"},
		{"cert without key", Options{Dir: "d", NoAuth: true, TLSCert: "c"}, "together"},
		{"no-tls with cert", Options{Dir: "d", NoAuth: true, NoTLS: true, TLSCert: "c", TLSKey: "k"}, "--no-tls"},
		{"negative", Options{Dir: "d", NoAuth: true, MaxRequestSize: -1}, "negative"},
		{"ok", Options{Dir: "d", NoAuth: true}, ""},
	}
	for _, tc := range tests {
		err := tc.o.Validate()
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			if tc.o.MaxRequestSize != DefaultMaxRequestSize || tc.o.UploadMemory < tc.o.MaxRequestSize || tc.o.Logger == nil {
				t.Errorf("%s: defaults not filled in: %+v", tc.name, tc.o)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Validate = %v, want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestSelfSignedCertExpiry(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	c1, made, err := selfSignedCert(dir, []string{"backup.example", "192.0.2.1", "0.0.0.0"}, now)
	if err != nil || !made {
		t.Fatalf("first: made %v, %v", made, err)
	}
	if c1.Leaf == nil || len(c1.Leaf.DNSNames) != 2 || len(c1.Leaf.IPAddresses) != 3 {
		t.Errorf("names %v, addresses %v", c1.Leaf.DNSNames, c1.Leaf.IPAddresses)
	}
	c2, made, err := selfSignedCert(dir, nil, now)
	if err != nil || made || Fingerprint(c2.Certificate[0]) != Fingerprint(c1.Certificate[0]) {
		t.Fatalf("second: made %v, %v", made, err)
	}
	c3, made, err := selfSignedCert(dir, nil, now.Add(certValidity+time.Hour))
	if err != nil || !made || Fingerprint(c3.Certificate[0]) == Fingerprint(c1.Certificate[0]) {
		t.Fatalf("after expiry: made %v, %v", made, err)
	}
}
