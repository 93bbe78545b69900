package rest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeebo/blake3"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/bunkerbackup/bunker/internal/restserver"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/local"
	"github.com/bunkerbackup/bunker/internal/storage/rest"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// users of the test servers and their passwords.
var users = map[string]string{"alice": "alice-pw", "bob": "bob-pw"}

// htpasswd writes an htpasswd file of users (bcrypt at the lowest cost,
// to keep the tests fast) and loads it.
func htpasswd(t *testing.T) *restserver.Users {
	t.Helper()
	var b strings.Builder
	for u, pw := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := restserver.LoadHtpasswd(path)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// testServer is an in-process "bunker serve" on a loopback port.
type testServer struct {
	srv    *restserver.Server
	dir    string
	url    *url.URL
	cancel context.CancelFunc
	done   chan error
	stop   func() error
}

// startServer starts a server with opts (Dir defaults to a temporary
// directory, users to the htpasswd of users unless NoAuth) and stops it
// when the test ends.
func startServer(t *testing.T, opts restserver.Options) *testServer {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if opts.Users == nil && !opts.NoAuth {
		opts.Users = htpasswd(t)
	}
	srv, err := restserver.New(opts)
	if err != nil {
		t.Fatalf("restserver.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{srv: srv, dir: opts.Dir, cancel: cancel, done: make(chan error, 1)}
	scheme := "https"
	if opts.NoTLS {
		scheme = "http"
	}
	ts.url = &url.URL{Scheme: scheme, Host: ln.Addr().String()}
	go func() { ts.done <- srv.Serve(ctx, ln) }()
	var stopped atomic.Bool
	var stopErr error
	ts.stop = func() error {
		if stopped.CompareAndSwap(false, true) {
			cancel()
			stopErr = <-ts.done
		}
		return stopErr
	}
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// config returns a client config for repo as user (no credentials for "").
func (ts *testServer) config(repo, user string) rest.Config {
	u := *ts.url
	cfg := rest.Config{URL: &u, Repo: repo, User: user, Password: users[user]}
	if fp := ts.srv.Fingerprint(); fp != "" {
		cfg.Fingerprint, _ = rest.ParseFingerprint(fp)
	}
	return cfg
}

// create creates a repository as user and returns its backend.
func (ts *testServer) create(t *testing.T, repo, user string) *rest.Backend {
	t.Helper()
	be, err := rest.Create(t.Context(), ts.config(repo, user))
	if err != nil {
		t.Fatalf("Create(%s as %q): %v", repo, user, err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be
}

// rawClient is an HTTP client that trusts the test server's certificate.
func (ts *testServer) rawClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// raw sends a request whose path goes on the wire exactly as given.
func (ts *testServer) raw(t *testing.T, c *http.Client, method, rawPath, user string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, ts.url.String()+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = rawPath
	if user != "" {
		req.SetBasicAuth(user, users[user])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawPath, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

var repoCounter atomic.Int64

func freshRepo() string { return fmt.Sprintf("/alice/r%d", repoCounter.Add(1)) }

func TestConformance(t *testing.T) {
	ts := startServer(t, restserver.Options{PrivateRepos: true})
	storagetest.Run(t, func(t *testing.T) storage.Backend { return ts.create(t, freshRepo(), "alice") })
}

func TestConformanceRootRepoNoTLS(t *testing.T) {
	// A server per subtest: each wants an empty backend, and "/" is the
	// only repository of its server.
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		ts := startServer(t, restserver.Options{NoAuth: true, NoTLS: true})
		return ts.create(t, "/", "")
	})
}

func TestHTTP2AndFeatures(t *testing.T) {
	ts := startServer(t, restserver.Options{})
	be := ts.create(t, "/r", "alice")
	if f := be.Features(); !f.ConditionalCreate || f.AppendOnly || f.ObjectLock {
		t.Errorf("Features() = %+v, want conditional create only", f)
	}
	if got, want := be.Location(), "rest:"+ts.url.Scheme+"://alice@"+ts.url.Host+"/r"; got != want {
		t.Errorf("Location() = %q, want %q", got, want)
	}
	resp, body := ts.raw(t, ts.rawClient(t), http.MethodGet, "/r/", "alice", nil)
	if resp.ProtoMajor != 2 {
		t.Errorf("reply over %s, want HTTP/2", resp.Proto)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"exists":true`) {
		t.Errorf("GET /r/ = %d %s", resp.StatusCode, body)
	}
	again, err := rest.Create(t.Context(), ts.config("/r", "alice"))
	if err != nil {
		t.Fatalf("Create of a repository without config: %v", err)
	}
	_ = again.Close()
	if err := be.Save(t.Context(), storage.Handle{Type: storage.ConfigFile}, []byte("cfg"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := rest.Create(t.Context(), ts.config("/r", "alice")); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("Create of a repository with a config = %v, want ErrExists", err)
	}
}

func TestMissingRepository(t *testing.T) {
	ts := startServer(t, restserver.Options{})
	be, err := rest.Open(t.Context(), ts.config("/nothing/here", "alice"))
	if err != nil {
		t.Fatalf("Open of a missing repository: %v", err)
	}
	defer func() { _ = be.Close() }()
	if _, err := storage.LoadAll(t.Context(), be, storage.Handle{Type: storage.ConfigFile}); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("load config of a missing repository = %v, want ErrNotExist", err)
	}
	n := 0
	if err := be.List(t.Context(), storage.KeyFile, func(storage.FileInfo) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("List of a missing repository = %d, %v; want nothing", n, err)
	}
	err = be.Save(t.Context(), storage.Handle{Type: storage.KeyFile, Name: "k"}, []byte("x"), storage.SaveOptions{})
	if !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Save into a missing repository = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(ts.dir, "nothing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a save into a missing repository made its directory (%v)", err)
	}
}

func TestAuth(t *testing.T) {
	ts := startServer(t, restserver.Options{})
	for _, tc := range []struct{ name, user, pw string }{
		{"wrong password", "alice", "wrong"},
		{"unknown user", "mallory", "alice-pw"},
		{"no credentials", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ts.config("/r", "")
			cfg.User, cfg.Password = tc.user, tc.pw
			_, err := rest.Create(t.Context(), cfg)
			if !errors.Is(err, storage.ErrAuth) {
				t.Fatalf("Create = %v, want ErrAuth", err)
			}
			if _, err := rest.Open(t.Context(), cfg); !errors.Is(err, storage.ErrAuth) {
				t.Fatalf("Open = %v, want ErrAuth", err)
			}
			if strings.Contains(err.Error(), "alice-pw") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	be := ts.create(t, "/r", "alice")
	h := storage.Handle{Type: storage.KeyFile, Name: "k"}
	if err := be.Save(t.Context(), h, []byte("k"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	resp, _ := ts.raw(t, ts.rawClient(t), http.MethodGet, "/r/keys/k", "", nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("GET without credentials = %d (WWW-Authenticate %q), want 401 with a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestPrivateRepos(t *testing.T) {
	ts := startServer(t, restserver.Options{PrivateRepos: true})
	alice := ts.create(t, "/alice/repo", "alice")
	h := storage.Handle{Type: storage.KeyFile, Name: "k"}
	if err := alice.Save(t.Context(), h, []byte("secret"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"/alice/repo", "/alice", "/", "/other"} {
		t.Run("bob "+repo, func(t *testing.T) {
			if _, err := rest.Create(t.Context(), ts.config(repo, "bob")); !errors.Is(err, storage.ErrPermission) {
				t.Errorf("bob Create(%s) = %v, want ErrPermission", repo, err)
			}
			if _, err := rest.Open(t.Context(), ts.config(repo, "bob")); !errors.Is(err, storage.ErrPermission) {
				t.Errorf("bob Open(%s) = %v, want ErrPermission", repo, err)
			}
		})
	}
	// Raw requests for alice's objects as bob.
	c := ts.rawClient(t)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodDelete} {
		if resp, _ := ts.raw(t, c, m, "/alice/repo/keys/k", "bob", nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("bob %s alice's key = %d, want 403", m, resp.StatusCode)
		}
	}
	if resp, _ := ts.raw(t, c, http.MethodGet, "/alice/repo/keys/", "bob", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob lists alice's keys = %d, want 403", resp.StatusCode)
	}
	if _, err := storage.LoadAll(t.Context(), alice, h); err != nil {
		t.Errorf("alice's key after bob's attempts: %v", err)
	}
	ts.create(t, "/bob/repo", "bob")
}

func TestAppendOnly(t *testing.T) {
	ts := startServer(t, restserver.Options{AppendOnly: true})
	be := ts.create(t, "/r", "alice")
	ctx := t.Context()
	if f := be.Features(); !f.AppendOnly || !f.ConditionalCreate {
		t.Fatalf("Features() = %+v, want append-only and conditional create", f)
	}
	// Content-addressed objects are named by the BLAKE3-256 of their bytes:
	// an append-only server checks that.
	contentName := func(t storage.FileType) string {
		sum := blake3.Sum256([]byte("version one of " + string(t)))
		return hex.EncodeToString(sum[:])
	}
	for _, h := range []storage.Handle{{Type: storage.ConfigFile}, {Type: storage.PackFile, Name: contentName(storage.PackFile)}, {Type: storage.SnapshotFile, Name: contentName(storage.SnapshotFile)}} {
		t.Run(string(h.Type), func(t *testing.T) {
			v1 := []byte("version one of " + string(h.Type))
			if err := be.Save(ctx, h, v1, storage.SaveOptions{}); err != nil {
				t.Fatalf("Save new: %v", err)
			}
			if err := be.Save(ctx, h, bytes.Clone(v1), storage.SaveOptions{}); err != nil {
				t.Errorf("re-upload of identical content = %v, want nil", err)
			}
			if err := be.Save(ctx, h, []byte("version two"), storage.SaveOptions{}); !errors.Is(err, storage.ErrPermission) {
				t.Errorf("overwrite = %v, want ErrPermission", err)
			}
			if err := be.Save(ctx, h, v1, storage.SaveOptions{IfNotExists: true}); !errors.Is(err, storage.ErrExists) {
				t.Errorf("conditional create of existing = %v, want ErrExists", err)
			}
			if err := be.Remove(ctx, h); !errors.Is(err, storage.ErrPermission) {
				t.Errorf("Remove = %v, want ErrPermission", err)
			}
			if got, err := storage.LoadAll(ctx, be, h); err != nil || !bytes.Equal(got, v1) {
				t.Errorf("object after refused changes = %q, %v; want %q", got, err, v1)
			}
		})
	}
	t.Run("sessions", func(t *testing.T) {
		h := storage.Handle{Type: storage.SessionFile, Name: "s-0123456789abcdef01234567"}
		if err := be.Save(ctx, h, []byte("session"), storage.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		// A writer refreshes its session while it runs.
		if err := be.Save(ctx, h, []byte("session, refreshed"), storage.SaveOptions{}); err != nil {
			t.Fatalf("refresh of a session = %v, want nil", err)
		}
		if err := be.Remove(ctx, h); err != nil {
			t.Fatalf("Remove of a session = %v, want nil", err)
		}
		if _, err := be.Stat(ctx, h); !errors.Is(err, storage.ErrNotExist) {
			t.Errorf("session after Remove: %v", err)
		}
	})
}

// TestServerMessages: errors quote the messages of a bunker server (from
// its Bunker-Error header), also of HEAD replies, which have no body.
func TestServerMessages(t *testing.T) {
	ts := startServer(t, restserver.Options{AppendOnly: true, PrivateRepos: true})
	be := ts.create(t, "/alice/r", "alice")
	h := storage.Handle{Type: storage.ConfigFile}
	if err := be.Save(t.Context(), h, []byte("one"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	err := be.Save(t.Context(), h, []byte("two"), storage.SaveOptions{})
	if !errors.Is(err, storage.ErrPermission) || !strings.Contains(err.Error(), "(server replied 403 Forbidden: append-only: config exists with other content and may not be overwritten)") {
		t.Errorf("overwrite = %v, want ErrPermission with the server's message", err)
	}
	// HEAD replies have no body, but the header.
	_, err = be.Stat(t.Context(), storage.Handle{Type: storage.KeyFile, Name: "missing"})
	if !errors.Is(err, storage.ErrNotExist) || !strings.HasSuffix(err.Error(), "(server replied 404 Not Found: object does not exist)") {
		t.Errorf("Stat of a missing object = %v, want ErrNotExist with the server's message", err)
	}
	if _, err := rest.Open(t.Context(), ts.config("/alice/r", "bob")); !errors.Is(err, storage.ErrPermission) || !strings.Contains(err.Error(), "a user reaches only /bob/...") {
		t.Errorf("Open of another user's repository = %v, want ErrPermission with the server's message", err)
	}
}

func TestHostilePaths(t *testing.T) {
	ts := startServer(t, restserver.Options{})
	ts.create(t, "/r", "alice")
	// Files a path escape could reach.
	if err := os.WriteFile(filepath.Join(filepath.Dir(ts.dir), "outside"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := ts.rawClient(t)
	long := strings.Repeat("a", rest.MaxNameLen+1)
	paths := []string{
		"/../outside",
		"/r/../../outside",
		"/%2e%2e/outside",
		"/%2E%2E/keys/",
		"/r/%2e%2e/%2e%2e/config",
		"/r/keys/..",
		"/r/keys/%2e%2e",
		"/r/keys/..%2f..%2fconfig",
		"/r/keys/a%2fb",
		"/r/keys/a%5cb",
		"/r/keys/a%00b",
		"/r/keys/.tmp-x",
		"/r/keys/ABC",
		"/r/keys/a%20b",
		"/r/keys/" + long,
		"/" + strings.Repeat("b", rest.MaxSegmentLen+1) + "/config",
		"/" + strings.Repeat("x/", rest.MaxRepoDepth+1) + "config",
		"/" + strings.Repeat("x", 3000),
		"/.bunker-serve/tls-key.pem",
		"/.bunker-serve/",
		"/r//config",
		"/r/keys/k/",
		"/r/config/",
		"/r/bogus/x",
		"/config/keys/k",
		"/r/%ff/config",
	}
	for _, p := range paths {
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			resp, body := ts.raw(t, c, m, p, "alice", []byte("data"))
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s %.80s = %d %s, want 400", m, p, resp.StatusCode, body)
			}
		}
	}
	if resp, _ := ts.raw(t, c, http.MethodPost, "/r/?create=true", "alice", nil); resp.StatusCode != http.StatusConflict && resp.StatusCode != http.StatusOK {
		t.Errorf("create again = %d", resp.StatusCode)
	}
	// Nothing was written outside the repository.
	entries, _ := os.ReadDir(filepath.Dir(ts.dir))
	for _, e := range entries {
		if e.Name() != filepath.Base(ts.dir) && e.Name() != "outside" && !strings.HasPrefix(e.Name(), "0") {
			t.Errorf("unexpected file %s next to the served directory", e.Name())
		}
	}
	if resp, _ := ts.raw(t, c, http.MethodGet, "/r/keys/missing", "alice", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of a valid missing name = %d, want 404", resp.StatusCode)
	}
	if resp, _ := ts.raw(t, c, http.MethodPut, "/r/keys/k", "alice", []byte("x")); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT = %d, want 405", resp.StatusCode)
	}
	for _, rng := range []string{"bytes=-5", "bytes=0-1,3-4", "items=0-1", "bytes=5-2", "bytes=a-"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.url.String()+"/r/keys/k", nil)
		req.SetBasicAuth("alice", users["alice"])
		req.Header.Set("Range", rng)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("Range %q = %d, want 400", rng, resp.StatusCode)
		}
	}
}

func TestRequestSizeLimit(t *testing.T) {
	const limit = 64 << 10
	ts := startServer(t, restserver.Options{MaxRequestSize: limit})
	be := ts.create(t, "/r", "alice")
	h := storage.Handle{Type: storage.PackFile, Name: "big"}
	if err := be.Save(t.Context(), h, make([]byte, limit), storage.SaveOptions{}); err != nil {
		t.Fatalf("Save at the limit: %v", err)
	}
	err := be.Save(t.Context(), h, make([]byte, limit+1), storage.SaveOptions{})
	if err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "413") {
		t.Fatalf("Save above the limit = %v, want a permanent 413 error", err)
	}
	// A body without a Content-Length is refused.
	c := ts.rawClient(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.url.String()+"/r/keys/k", io.MultiReader(strings.NewReader("x")))
	req.SetBasicAuth("alice", users["alice"])
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Errorf("POST without Content-Length = %d, want 411", resp.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, restserver.Options{})
	be := ts.create(t, "/r", "alice")
	h := storage.Handle{Type: storage.PackFile, Name: "p"}
	if err := be.Save(t.Context(), h, make([]byte, 1000), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.LoadAll(t.Context(), be, h); err != nil {
		t.Fatal(err)
	}
	_, _ = be.Stat(t.Context(), storage.Handle{Type: storage.PackFile, Name: "missing"})
	c := ts.rawClient(t)
	if resp, _ := ts.raw(t, c, http.MethodGet, "/metrics", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without credentials = %d, want 401", resp.StatusCode)
	}
	resp, body := ts.raw(t, c, http.MethodGet, "/metrics", "alice", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	for _, want := range []string{
		`bunker_rest_requests_total{method="POST",status="200",type="packs"} 1`,
		`bunker_rest_requests_total{method="GET",status="200",type="packs"} 1`,
		`bunker_rest_requests_total{method="HEAD",status="404",type="packs"} 1`,
		`bunker_rest_received_bytes_total{type="packs"} 1000`,
		`bunker_rest_sent_bytes_total{type="packs"} 1000`,
		`bunker_rest_auth_failures_total 1`,
		`bunker_rest_request_duration_seconds_count{method="POST",type="packs"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	open := startServer(t, restserver.Options{MetricsNoAuth: true})
	if resp, _ := open.raw(t, open.rawClient(t), http.MethodGet, "/metrics", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics with MetricsNoAuth = %d, want 200", resp.StatusCode)
	}
}

// slowBody hands out a request body in two parts: the second only after
// release is closed.
type slowBody struct {
	first, second []byte
	sentFirst     chan struct{}
	release       chan struct{}
	state         int
}

func (b *slowBody) Read(p []byte) (int, error) {
	switch b.state {
	case 0:
		b.state = 1
		close(b.sentFirst)
		return copy(p, b.first), nil
	case 1:
		<-b.release
		b.state = 2
		return copy(p, b.second), nil
	}
	return 0, io.EOF
}

func TestGracefulShutdown(t *testing.T) {
	for _, noTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("noTLS=%v", noTLS), func(t *testing.T) {
			ts := startServer(t, restserver.Options{NoTLS: noTLS})
			ts.create(t, "/r", "alice")
			body := &slowBody{first: bytes.Repeat([]byte("a"), 1000), second: bytes.Repeat([]byte("b"), 1000),
				sentFirst: make(chan struct{}), release: make(chan struct{})}
			c := ts.rawClient(t)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, ts.url.String()+"/r/packs/inflight", body)
			req.ContentLength = 2000
			req.SetBasicAuth("alice", users["alice"])
			type result struct {
				resp *http.Response
				err  error
			}
			res := make(chan result, 1)
			go func() {
				resp, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				res <- result{resp, err}
			}()
			<-body.sentFirst
			time.Sleep(50 * time.Millisecond) // let the server start reading the body
			ts.cancel()
			// The listener closes: new connections are refused.
			deadline := time.Now().Add(5 * time.Second)
			for {
				conn, err := net.DialTimeout("tcp", ts.url.Host, time.Second)
				if err != nil {
					break
				}
				_ = conn.Close()
				if time.Now().After(deadline) {
					t.Fatal("server still accepts connections after shutdown began")
				}
				time.Sleep(20 * time.Millisecond)
			}
			select {
			case err := <-ts.done:
				t.Fatalf("Serve returned (%v) with an upload in flight", err)
			default:
			}
			close(body.release)
			r := <-res
			if r.err != nil || r.resp.StatusCode != http.StatusOK {
				t.Fatalf("in-flight upload: %v %v", r.err, r.resp)
			}
			if err := ts.stop(); err != nil {
				t.Fatalf("Serve after shutdown: %v", err)
			}
			lb, err := local.New(filepath.Join(ts.dir, "r"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := storage.LoadAll(t.Context(), lb, storage.Handle{Type: storage.PackFile, Name: "inflight"})
			if err != nil || !bytes.Equal(got, append(bytes.Clone(body.first), body.second...)) {
				t.Fatalf("uploaded object after shutdown: %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestFingerprintPinning(t *testing.T) {
	dir := t.TempDir()
	ts := startServer(t, restserver.Options{Dir: dir})
	if !ts.srv.NewCertificate() || !strings.HasPrefix(ts.srv.Fingerprint(), "sha256:") {
		t.Fatalf("first start: new certificate %v, fingerprint %q", ts.srv.NewCertificate(), ts.srv.Fingerprint())
	}
	ts.create(t, "/r", "alice")

	t.Run("wrong pin", func(t *testing.T) {
		cfg := ts.config("/r", "alice")
		cfg.Fingerprint = bytes.Repeat([]byte{1}, 32)
		_, err := rest.Open(t.Context(), cfg)
		if err == nil || !storage.IsPermanent(err) || errors.Is(err, storage.ErrAuth) || !strings.Contains(err.Error(), "fingerprint") {
			t.Fatalf("Open with a wrong pin = %v, want a permanent fingerprint error", err)
		}
	})
	t.Run("no pin, system roots", func(t *testing.T) {
		cfg := ts.config("/r", "alice")
		cfg.Fingerprint = nil
		_, err := rest.Open(t.Context(), cfg)
		if err == nil || !storage.IsPermanent(err) {
			t.Fatalf("Open of a self-signed server without pin = %v, want a permanent certificate error", err)
		}
	})
	t.Run("certificate as CA", func(t *testing.T) {
		cfg := ts.config("/r", "alice")
		cfg.Fingerprint = nil
		cfg.CAFile = filepath.Join(dir, ".bunker-serve", "tls-cert.pem")
		be, err := rest.Open(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Open with the certificate as CA: %v", err)
		}
		_ = be.Close()
	})
	t.Run("via ParseConfig", func(t *testing.T) {
		env := map[string]string{rest.EnvPassword: users["alice"], rest.EnvFingerprint: strings.ToUpper(ts.srv.Fingerprint())}
		cfg, err := rest.ParseConfig("https://alice@"+ts.url.Host+"/r", func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		be, err := rest.Open(t.Context(), cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		_ = be.Close()
	})
	first := ts.srv.Fingerprint()
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	again := startServer(t, restserver.Options{Dir: dir})
	if again.srv.NewCertificate() || again.srv.Fingerprint() != first {
		t.Errorf("restart: new certificate %v, fingerprint %s, want the kept %s", again.srv.NewCertificate(), again.srv.Fingerprint(), first)
	}
}

func TestLoadStreams(t *testing.T) {
	// A load hands the callback the reply body, not a buffer: the
	// callback sees the first bytes of a large object while the rest is
	// still on the way, and can stop early.
	ts := startServer(t, restserver.Options{})
	be := ts.create(t, "/r", "alice")
	h := storage.Handle{Type: storage.PackFile, Name: "large"}
	data := bytes.Repeat([]byte("0123456789abcdef"), 4<<20) // 64 MiB
	if err := be.Save(t.Context(), h, data, storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	err := be.Load(t.Context(), h, 0, 0, func(rd io.Reader) error {
		if _, ok := rd.(*bytes.Reader); ok {
			return errors.New("got a buffered reader")
		}
		var b [16]byte
		if _, err := io.ReadFull(rd, b[:]); err != nil {
			return err
		}
		if string(b[:]) != "0123456789abcdef" {
			return fmt.Errorf("first bytes %q", b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	err = be.Load(t.Context(), h, 1<<20, 1<<25, func(rd io.Reader) error {
		var err error
		n, err = io.Copy(io.Discard, rd)
		return err
	})
	if err != nil || n != 1<<20 {
		t.Fatalf("ranged load = %d bytes, %v", n, err)
	}
}

func TestServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	cfg, err := rest.ParseConfig("http://"+addr+"/r", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rest.Open(t.Context(), cfg)
	if err == nil || storage.IsPermanent(err) {
		t.Fatalf("Open of a server that is down = %v, want a transient error", err)
	}
	if !strings.Contains(err.Error(), "rest:http://"+addr+"/r") {
		t.Errorf("error does not name the location: %v", err)
	}
}
