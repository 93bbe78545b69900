package azure

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

var containerSeq atomic.Int64

// newContainer returns a container name not used before in this process.
func newContainer(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, containerSeq.Add(1))
}

// configFor returns the config of container:/prefix on srv.
func configFor(t *testing.T, srv *testsrv.AzuriteServer, container, prefix string) Config {
	t.Helper()
	env := map[string]string{
		"AZURE_STORAGE_ACCOUNT": srv.Account,
		"AZURE_STORAGE_KEY":     srv.Key,
		"BUNKER_AZURE_ENDPOINT": srv.Endpoint,
	}
	loc := container
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
	srv := testsrv.Azurite(t)
	variants := []struct {
		name   string
		prefix string
		tune   func(*Config)
	}{
		{"prefix", "repo/one", nil},
		{"root", "", nil},
		// Small blocks send everything above 64 KiB through staged
		// blocks and one commit.
		{"blocks", "blocks", func(c *Config) { c.BlockSize, c.SingleUploadMax = 64<<10, 64<<10 }},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			storagetest.Run(t, func(t *testing.T) storage.Backend {
				cfg := configFor(t, srv, newContainer("conf"), v.prefix)
				if v.tune != nil {
					v.tune(&cfg)
				}
				return create(t, cfg)
			})
		})
	}
}

// TestSharedContainer checks that repositories under different prefixes of
// one container, and a repository at its root, do not see each other.
func TestSharedContainer(t *testing.T) {
	srv := testsrv.Azurite(t)
	cont := newContainer("shared")
	root := create(t, configFor(t, srv, cont, ""))
	a := create(t, configFor(t, srv, cont, "a"))
	ab := create(t, configFor(t, srv, cont, "a/b"))
	storagetest.Isolated(t, root, a, ab)
	if got, want := ab.keys.Key(storage.Handle{Type: storage.PackFile, Name: "abcd"}), "a/b/packs/ab/abcd"; got != want {
		t.Errorf("pack key = %q, want %q", got, want)
	}
}

func TestOpenAndCreate(t *testing.T) {
	srv := testsrv.Azurite(t)
	ctx := t.Context()

	// Open of a container that does not exist works; the engine finds
	// out from the missing config.
	missing := configFor(t, srv, newContainer("missing"), "p")
	be, err := Open(ctx, missing)
	if err != nil {
		t.Fatalf("Open of a missing container: %v", err)
	}
	if _, err := be.Stat(ctx, storage.Handle{Type: storage.ConfigFile}); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Stat(config) in a missing container = %v, want ErrNotExist", err)
	}
	if err := be.List(ctx, storage.PackFile, func(storage.FileInfo) error { return nil }); err != nil {
		t.Errorf("List in a missing container = %v, want nil", err)
	}
	if err := be.Remove(ctx, storage.Handle{Type: storage.KeyFile, Name: "k"}); err != nil {
		t.Errorf("Remove in a missing container = %v, want nil", err)
	}
	err = be.Save(ctx, storage.Handle{Type: storage.KeyFile, Name: "k"}, []byte("x"), storage.SaveOptions{})
	if !errors.Is(err, storage.ErrNotExist) || !strings.Contains(err.Error(), be.Location()) {
		t.Errorf("Save in a missing container = %v, want ErrNotExist naming %s", err, be.Location())
	}
	_ = be.Close()

	// Create makes the container; a second Create finds the config.
	cfg := configFor(t, srv, newContainer("create"), "p")
	be = create(t, cfg)
	if err := be.Save(ctx, storage.Handle{Type: storage.ConfigFile}, []byte("cfg"), storage.SaveOptions{IfNotExists: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, cfg); !errors.Is(err, storage.ErrExists) {
		t.Errorf("Create over an existing repository = %v, want ErrExists", err)
	}
	// Another prefix in the same (now existing) container is fine.
	create(t, configFor(t, srv, cfg.Container, "other"))
	be2, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() { _ = be2.Close() }()
	if got, err := storage.LoadAll(ctx, be2, storage.Handle{Type: storage.ConfigFile}); err != nil || string(got) != "cfg" {
		t.Errorf("config through a second backend = %q, %v", got, err)
	}
	if got, want := be2.Location(), "azure:"+cfg.Container+":/p"; got != want {
		t.Errorf("Location() = %q, want %q", got, want)
	}
}

func TestWrongCredentials(t *testing.T) {
	srv := testsrv.Azurite(t)
	good := configFor(t, srv, newContainer("auth"), "")
	create(t, good)

	bad := good
	bad.Key = "d3JvbmcgYnV0IHZhbGlkIGJhc2U2NCBrZXkgb2YgdGhlIHJpZ2h0IGtpbmQ=" // "wrong but valid base64 key of the right kind"
	if _, err := Open(t.Context(), bad); !errors.Is(err, storage.ErrAuth) || !storage.IsPermanent(err) {
		t.Errorf("Open with a wrong key = %v, want ErrAuth", err)
	}
	if _, err := Create(t.Context(), bad); !errors.Is(err, storage.ErrAuth) {
		t.Errorf("Create with a wrong key = %v, want ErrAuth", err)
	}
	if strings.Contains(fmt.Sprint(bad), bad.Key) || strings.Contains(fmt.Sprintf("%#v", bad), bad.Key) {
		t.Errorf("Config formatting shows the key: %v", bad)
	}

	// A backend made with good credentials that turn bad (here: a
	// second backend built by hand) reports ErrAuth on every operation.
	be, err := newBackend(bad)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = be.Close() }()
	h := storage.Handle{Type: storage.SnapshotFile, Name: "s"}
	for op, err := range map[string]error{
		"Save":   be.Save(t.Context(), h, []byte("x"), storage.SaveOptions{}),
		"Load":   be.Load(t.Context(), h, 0, 0, func(io.Reader) error { return nil }),
		"Stat":   func() error { _, err := be.Stat(t.Context(), h); return err }(),
		"List":   be.List(t.Context(), storage.SnapshotFile, func(storage.FileInfo) error { return nil }),
		"Remove": be.Remove(t.Context(), h),
	} {
		if !errors.Is(err, storage.ErrAuth) {
			t.Errorf("%s with a wrong key = %v, want ErrAuth", op, err)
		}
	}
}

// sasFor returns a container SAS token with the given permissions, signed
// with the emulator's key.
func sasFor(t *testing.T, srv *testsrv.AzuriteServer, cont string, perms sas.ContainerPermissions) string {
	t.Helper()
	cred, err := azblob.NewSharedKeyCredential(srv.Account, srv.Key)
	if err != nil {
		t.Fatal(err)
	}
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		StartTime:     time.Now().Add(-time.Hour),
		ExpiryTime:    time.Now().Add(time.Hour),
		ContainerName: cont,
		Permissions:   perms.String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	return qp.Encode()
}

func sasConfig(t *testing.T, srv *testsrv.AzuriteServer, cont, prefix, token string) Config {
	t.Helper()
	env := map[string]string{
		"AZURE_STORAGE_ACCOUNT":   srv.Account,
		"AZURE_STORAGE_SAS_TOKEN": token,
		"AZURE_STORAGE_ENDPOINT":  srv.Endpoint,
	}
	cfg, err := ParseConfig(cont+":/"+prefix, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSASConformance runs the suite through a container SAS token (which
// may not create the container), a fresh prefix per subtest.
func TestSASConformance(t *testing.T) {
	srv := testsrv.Azurite(t)
	cont := newContainer("sas")
	create(t, configFor(t, srv, cont, "")) // makes the container
	token := sasFor(t, srv, cont, sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true, List: true})
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return create(t, sasConfig(t, srv, cont, fmt.Sprintf("r%d", n.Add(1)), token))
	})
}

func TestSASPermissions(t *testing.T) {
	srv := testsrv.Azurite(t)
	cont := newContainer("sasperm")
	create(t, configFor(t, srv, cont, ""))
	ctx := t.Context()
	h := storage.Handle{Type: storage.SnapshotFile, Name: "s"}

	// Without delete permission: writes work, Remove is refused.
	noDelete := sasFor(t, srv, cont, sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, List: true})
	be := create(t, sasConfig(t, srv, cont, "p", noDelete))
	if err := be.Save(ctx, h, []byte("x"), storage.SaveOptions{IfNotExists: true}); err != nil {
		t.Fatalf("Save with a no-delete SAS: %v", err)
	}
	if err := be.Remove(ctx, h); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("Remove with a no-delete SAS = %v, want ErrPermission", err)
	}

	// Read-only: Open works, Save is refused.
	readOnly := sasFor(t, srv, cont, sas.ContainerPermissions{Read: true, List: true})
	ro, err := Open(ctx, sasConfig(t, srv, cont, "p", readOnly))
	if err != nil {
		t.Fatalf("Open with a read-only SAS: %v", err)
	}
	defer func() { _ = ro.Close() }()
	if got, err := storage.LoadAll(ctx, ro, h); err != nil || string(got) != "x" {
		t.Errorf("Load with a read-only SAS = %q, %v", got, err)
	}
	if err := ro.Save(ctx, storage.Handle{Type: storage.KeyFile, Name: "k"}, []byte("x"), storage.SaveOptions{}); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("Save with a read-only SAS = %v, want ErrPermission", err)
	}

	// A forged signature is a credential failure, and the error does
	// not show the token.
	forged := "sv=2021-08-06&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00:00:00Z&st=2000-01-01T00:00:00Z&spr=http&sig=Zm9yZ2Vk"
	_, err = Open(ctx, sasConfig(t, srv, cont, "p", forged))
	if !errors.Is(err, storage.ErrAuth) {
		t.Errorf("Open with a forged SAS = %v, want ErrAuth", err)
	}
	if err != nil && strings.Contains(err.Error(), "Zm9yZ2Vk") {
		t.Errorf("error shows the SAS signature: %v", err)
	}
}

// TestLargeConditional checks conditional create and its race through
// staged blocks, where the condition goes with the commit.
func TestLargeConditional(t *testing.T) {
	srv := testsrv.Azurite(t)
	cfg := configFor(t, srv, newContainer("large"), "")
	cfg.BlockSize, cfg.SingleUploadMax = 32<<10, 32<<10
	be := create(t, cfg)
	h := storage.Handle{Type: storage.PackFile, Name: "big"}
	data := bytes.Repeat([]byte("0123456789abcdef"), 20<<10) // 320 KiB, 10 blocks
	create := storage.SaveOptions{IfNotExists: true}
	if err := be.Save(t.Context(), h, data, create); err != nil {
		t.Fatalf("conditional create: %v", err)
	}
	if err := be.Save(t.Context(), h, data[:1000], create); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("second conditional create = %v, want ErrExists", err)
	}
	got, err := storage.LoadAll(t.Context(), be, h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("LoadAll = %d bytes, %v; want the first version (%d bytes)", len(got), err, len(data))
	}

	h = storage.Handle{Type: storage.MaintFile, Name: "race"}
	const racers = 6
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			errs[i] = be.Save(t.Context(), h, bytes.Repeat([]byte{byte(i)}, 100<<10), create)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("racers %d and %d both created %v", winner, i, h)
		case err == nil:
			winner = i
		case !errors.Is(err, storage.ErrExists):
			t.Fatalf("racer %d: %v, want nil or ErrExists", i, err)
		}
	}
	got, err = storage.LoadAll(t.Context(), be, h)
	if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{byte(winner)}, 100<<10)) {
		t.Fatalf("after the race: %d bytes, %v; want the winner's", len(got), err)
	}
}

func TestAccessTier(t *testing.T) {
	srv := testsrv.Azurite(t)
	cfg := configFor(t, srv, newContainer("tier"), "")
	cfg.AccessTierPacks = "Cool"
	be := create(t, cfg)
	h := storage.Handle{Type: storage.PackFile, Name: "cool"}
	if err := be.Save(t.Context(), h, []byte("pack"), storage.SaveOptions{}); err != nil {
		t.Fatalf("Save with tier Cool: %v", err)
	}
	props, err := be.container.NewBlobClient(be.keys.Key(h)).GetProperties(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if props.AccessTier == nil || *props.AccessTier != "Cool" {
		t.Errorf("access tier of a pack = %v, want Cool", props.AccessTier)
	}
	idx := storage.Handle{Type: storage.IndexFile, Name: "hot"}
	if err := be.Save(t.Context(), idx, []byte("index"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	props, err = be.container.NewBlobClient(be.keys.Key(idx)).GetProperties(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if props.AccessTier != nil && *props.AccessTier == "Cool" {
		t.Errorf("an index got the packs' access tier")
	}
}

func TestLoadEmptyRangeAtEnd(t *testing.T) {
	srv := testsrv.Azurite(t)
	be := create(t, configFor(t, srv, newContainer("end"), ""))
	storagetest.LoadEmptyRangeAtEnd(t, be)
}

// TestServerKilled checks that a store that goes away mid-operation gives
// a clear, transient error naming the location and the object.
func TestServerKilled(t *testing.T) {
	srv := testsrv.Azurite(t)
	storagetest.CheckLeaks(t)
	cfg := configFor(t, srv, newContainer("killed"), "p")
	cfg.RetryDelay = 10 * time.Millisecond
	storagetest.ServerKilled(t, create(t, cfg), srv.Proc.Kill)
}

func TestGoroutinesAfterClose(t *testing.T) {
	srv := testsrv.Azurite(t)
	storagetest.CheckLeaks(t)
	storagetest.UseAndClose(t, create(t, configFor(t, srv, newContainer("leak"), "")))
}
