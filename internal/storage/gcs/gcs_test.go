package gcs

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	storagev1 "google.golang.org/api/storage/v1"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

var bucketSeq atomic.Int64

// newBucket returns a bucket name not used before in this process.
func newBucket(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, bucketSeq.Add(1))
}

// configFor returns the config of bucket:/prefix on srv.
func configFor(t *testing.T, srv *testsrv.FakeGCSServer, bucket, prefix string) Config {
	t.Helper()
	env := map[string]string{"STORAGE_EMULATOR_HOST": srv.Host}
	loc := bucket
	if prefix != "" {
		loc += ":/" + prefix
	}
	cfg, err := ParseConfig(loc, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("ParseConfig(%q): %v", loc, err)
	}
	return cfg
}

func create(t *testing.T, cfg Config) *Backend {
	t.Helper()
	be, err := Create(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Create(%s): %v", cfg, err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be
}

func TestConformance(t *testing.T) {
	srv := testsrv.FakeGCS(t)
	variants := []struct {
		name   string
		prefix string
		tune   func(*Config)
	}{
		{"prefix", "repo/one", nil},
		{"root", "", nil},
		// Resumable uploads in 256 KiB chunks for everything larger.
		{"chunked", "chunked", func(c *Config) { c.ChunkSize = 256 << 10 }},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) storage.Backend {
				cfg := configFor(t, srv, newBucket("conf"), v.prefix)
				if v.tune != nil {
					v.tune(&cfg)
				}
				return create(t, cfg)
			})
		})
	}
}

// TestSharedBucket checks that repositories under different prefixes of
// one bucket, and a repository at its root, do not see each other.
func TestSharedBucket(t *testing.T) {
	srv := testsrv.FakeGCS(t)
	bkt := newBucket("shared")
	root := create(t, configFor(t, srv, bkt, ""))
	a := create(t, configFor(t, srv, bkt, "a"))
	ab := create(t, configFor(t, srv, bkt, "a/b"))
	storagetest.Isolated(t, root, a, ab)
	if got, want := ab.keys.Key(storage.Handle{Type: storage.PackFile, Name: "abcd"}), "a/b/packs/ab/abcd"; got != want {
		t.Errorf("pack key = %q, want %q", got, want)
	}
}

func TestOpenAndCreate(t *testing.T) {
	srv := testsrv.FakeGCS(t)
	ctx := t.Context()

	// Open of a bucket that does not exist works; the engine finds out
	// from the missing config.
	be, err := Open(ctx, configFor(t, srv, newBucket("missing"), "p"))
	if err != nil {
		t.Fatalf("Open of a missing bucket: %v", err)
	}
	if _, err := be.Stat(ctx, storage.Handle{Type: storage.ConfigFile}); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Stat(config) in a missing bucket = %v, want ErrNotExist", err)
	}
	if err := be.List(ctx, storage.PackFile, func(storage.FileInfo) error { return nil }); err != nil {
		t.Errorf("List in a missing bucket = %v, want nil", err)
	}
	if err := be.Remove(ctx, storage.Handle{Type: storage.KeyFile, Name: "k"}); err != nil {
		t.Errorf("Remove in a missing bucket = %v, want nil", err)
	}
	err = be.Save(ctx, storage.Handle{Type: storage.KeyFile, Name: "k"}, []byte("x"), storage.SaveOptions{})
	if err == nil || !strings.Contains(err.Error(), be.Location()) || !storage.IsPermanent(err) {
		t.Errorf("Save in a missing bucket = %v, want a permanent error naming %s", err, be.Location())
	}
	_ = be.Close()
	if err := be.Save(ctx, storage.Handle{Type: storage.KeyFile, Name: "k"}, nil, storage.SaveOptions{}); err == nil {
		t.Errorf("Save after Close succeeded")
	}
	if err := be.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}

	// Create makes the bucket; a second Create finds the config.
	cfg := configFor(t, srv, newBucket("create"), "p")
	be = create(t, cfg)
	if err := be.Save(ctx, storage.Handle{Type: storage.ConfigFile}, []byte("cfg"), storage.SaveOptions{IfNotExists: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, cfg); !errors.Is(err, storage.ErrExists) {
		t.Errorf("Create over an existing repository = %v, want ErrExists", err)
	}
	create(t, configFor(t, srv, cfg.Bucket, "other"))
	be2, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() { _ = be2.Close() }()
	if got, err := storage.LoadAll(ctx, be2, storage.Handle{Type: storage.ConfigFile}); err != nil || string(got) != "cfg" {
		t.Errorf("config through a second backend = %q, %v", got, err)
	}
	if got, want := be2.Location(), "gs:"+cfg.Bucket+":/p"; got != want {
		t.Errorf("Location() = %q, want %q", got, want)
	}

	// Without an emulator, creating a missing bucket needs a project.
	noProject := cfg
	noProject.EmulatorHost = ""
	noProject.Endpoint = srv.URL + "/storage/v1/"
	noProject.Bucket = newBucket("noproject")
	noProject.CredentialsFile = writeServiceAccount(t, tokenServer(t, http.StatusOK))
	if _, err := Create(ctx, noProject); err == nil || !strings.Contains(err.Error(), "GOOGLE_PROJECT_ID") {
		t.Errorf("Create of a missing bucket without a project = %v, want an error naming GOOGLE_PROJECT_ID", err)
	}
}

func TestStorageClass(t *testing.T) {
	srv := testsrv.FakeGCS(t)
	cfg := configFor(t, srv, newBucket("class"), "")
	cfg.StorageClassPacks = "NEARLINE"
	be := create(t, cfg)
	h := storage.Handle{Type: storage.PackFile, Name: "cold"}
	if err := be.Save(t.Context(), h, []byte("pack"), storage.SaveOptions{}); err != nil {
		t.Fatalf("Save with class NEARLINE: %v", err)
	}
	attrs, err := objectAttrs(t, be, h)
	if err != nil {
		t.Fatal(err)
	}
	if attrs.StorageClass != "NEARLINE" {
		t.Errorf("storage class of a pack = %q, want NEARLINE", attrs.StorageClass)
	}
	idx := storage.Handle{Type: storage.IndexFile, Name: "i"}
	if err := be.Save(t.Context(), idx, []byte("index"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if attrs, err := objectAttrs(t, be, idx); err != nil || attrs.StorageClass == "NEARLINE" {
		t.Errorf("storage class of an index = %q, %v; want the default", attrs.StorageClass, err)
	}
	// A pack of trees is metadata: it stays in the default class.
	trees := storage.Handle{Type: storage.PackFile, Name: "trees"}
	if err := be.Save(t.Context(), trees, []byte("pack"), storage.SaveOptions{Metadata: true}); err != nil {
		t.Fatal(err)
	}
	if attrs, err := objectAttrs(t, be, trees); err != nil || attrs.StorageClass == "NEARLINE" {
		t.Errorf("storage class of a tree pack = %q, %v; want the default", attrs.StorageClass, err)
	}
}

// objectAttrs reads the whole metadata of the object of h.
func objectAttrs(t *testing.T, be *Backend, h storage.Handle) (*storagev1.Object, error) {
	t.Helper()
	return be.svc.Objects.Get(be.cfg.Bucket, be.keys.Key(h)).Context(t.Context()).Do()
}

func TestLoadEmptyRangeAtEnd(t *testing.T) {
	srv := testsrv.FakeGCS(t)
	be := create(t, configFor(t, srv, newBucket("end"), ""))
	storagetest.LoadEmptyRangeAtEnd(t, be)
}

// tokenServer is an OAuth token endpoint that answers with status: 200
// gives a token (which fake-gcs-server accepts, as any), anything else
// refuses the credentials.
func tokenServer(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			_, _ = io.WriteString(w, `{"access_token":"test-token","token_type":"Bearer","expires_in":3600}`)
			return
		}
		_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":"The OAuth client was not found."}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/token"
}

// writeServiceAccount writes a service account key file with a fresh RSA
// key whose token endpoint is tokenURI.
func writeServiceAccount(t *testing.T, tokenURI string) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "bunker-test",
		"private_key_id": "0123456789abcdef",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "bunker@bunker-test.iam.gserviceaccount.com",
		"client_id":      "1234567890",
		"token_uri":      tokenURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(path, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCredentials goes through a service account key file and a local
// token endpoint: fake-gcs-server itself accepts any credentials, so a
// refused credential can only be seen at the token endpoint.
func TestCredentials(t *testing.T) {
	srv := testsrv.FakeGCS(t)
	bkt := newBucket("creds")
	create(t, configFor(t, srv, bkt, "")) // makes the bucket
	withKey := func(status int) Config {
		cfg := configFor(t, srv, bkt, "p")
		cfg.EmulatorHost = ""
		cfg.Endpoint = srv.URL + "/storage/v1/"
		cfg.CredentialsFile = writeServiceAccount(t, tokenServer(t, status))
		return cfg
	}
	ctx := t.Context()

	good, err := Create(ctx, withKey(http.StatusOK))
	if err != nil {
		t.Fatalf("Create with a service account key: %v", err)
	}
	defer func() { _ = good.Close() }()
	h := storage.Handle{Type: storage.SnapshotFile, Name: "s"}
	if err := good.Save(ctx, h, []byte("x"), storage.SaveOptions{}); err != nil {
		t.Fatalf("Save with a service account key: %v", err)
	}
	if got, err := storage.LoadAll(ctx, good, h); err != nil || string(got) != "x" {
		t.Errorf("Load with a service account key = %q, %v", got, err)
	}

	bad := withKey(http.StatusUnauthorized)
	if _, err := Open(ctx, bad); !errors.Is(err, storage.ErrAuth) || !storage.IsPermanent(err) {
		t.Errorf("Open with a refused key = %v, want ErrAuth", err)
	}
	be, err := newBackend(ctx, bad)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = be.Close() }()
	for op, err := range map[string]error{
		"Save":   be.Save(ctx, h, []byte("x"), storage.SaveOptions{}),
		"Load":   be.Load(ctx, h, 0, 0, func(io.Reader) error { return nil }),
		"Stat":   func() error { _, err := be.Stat(ctx, h); return err }(),
		"List":   be.List(ctx, storage.SnapshotFile, func(storage.FileInfo) error { return nil }),
		"Remove": be.Remove(ctx, h),
	} {
		if !errors.Is(err, storage.ErrAuth) {
			t.Errorf("%s with a refused key = %v, want ErrAuth", op, err)
		}
	}

	// A file that is no credentials file is refused before any request.
	junk := filepath.Join(t.TempDir(), "junk.json")
	if err := os.WriteFile(junk, []byte(`{"type":"something_else"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := withKey(http.StatusOK)
	cfg.CredentialsFile = junk
	if _, err := Open(ctx, cfg); err == nil || !storage.IsPermanent(err) || !strings.Contains(err.Error(), "unsupported credentials type") {
		t.Errorf("Open with a junk credentials file = %v, want a permanent error", err)
	}
	cfg.CredentialsFile = filepath.Join(t.TempDir(), "missing.json")
	if _, err := Open(ctx, cfg); err == nil || !storage.IsPermanent(err) {
		t.Errorf("Open with a missing credentials file = %v, want a permanent error", err)
	}
}

// TestServerKilled checks that a store that goes away mid-operation gives
// a clear, transient error naming the location and the object.
func TestServerKilled(t *testing.T) {
	srv := testsrv.FakeGCS(t)
	storagetest.CheckLeaks(t)
	cfg := configFor(t, srv, newBucket("killed"), "p")
	cfg.RetryDelay = 10 * time.Millisecond
	storagetest.ServerKilled(t, create(t, cfg), srv.Proc.Kill)
}

func TestGoroutinesAfterClose(t *testing.T) {
	srv := testsrv.FakeGCS(t)
	storagetest.CheckLeaks(t)
	storagetest.UseAndClose(t, create(t, configFor(t, srv, newBucket("leak"), "")))
}
