package sftp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/retry"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

func TestMain(m *testing.M) {
	// sshd and its sessions see no caller's SSH_AUTH_SOCK or BUNKER_*.
	testutil.CleanEnv()
	goleak.VerifyTestMain(m)
}

var repoCounter atomic.Int64

// testConfig returns a configuration for a fresh repository directory on
// srv, made through ParseConfig from a URL location.
func testConfig(t *testing.T, srv *testsrv.SSHServer, env map[string]string) Config {
	t.Helper()
	dir := filepath.Join(srv.Dir, fmt.Sprintf("repo-%d", repoCounter.Add(1)))
	loc := fmt.Sprintf("//%s@%s:%d%s", srv.User, srv.Host, srv.Port, dir)
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		switch k {
		case "BUNKER_SFTP_KEY":
			return srv.KeyFile
		case "BUNKER_SFTP_KNOWN_HOSTS":
			return srv.KnownHosts
		case "HOME":
			return t.TempDir()
		}
		return ""
	}
	cfg, err := ParseConfig(loc, getenv)
	if err != nil {
		t.Fatalf("ParseConfig(%q): %v", loc, err)
	}
	return cfg
}

func create(t *testing.T, cfg Config) *Backend {
	t.Helper()
	be, err := Create(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() { _ = be.Close() })
	return be
}

func TestConformance(t *testing.T) {
	srv := testsrv.SSHD(t)
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return create(t, testConfig(t, srv, nil))
	})
}

// TestConformanceOneConnection runs the suite over a single connection,
// where every request shares one server process.
func TestConformanceOneConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	srv := testsrv.SSHD(t)
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return create(t, testConfig(t, srv, map[string]string{"BUNKER_SFTP_CONNECTIONS": "1"}))
	})
}

func TestCreateOpen(t *testing.T) {
	srv := testsrv.SSHD(t)
	cfg := testConfig(t, srv, nil)
	ctx := t.Context()

	// Open of a missing repository connects and returns the backend.
	be, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open of a missing repository: %v", err)
	}
	if _, err := be.Stat(ctx, storage.Handle{Type: storage.ConfigFile}); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("Stat(config) of a missing repository = %v, want ErrNotExist", err)
	}
	_ = be.Close()

	be = create(t, cfg)
	for _, ft := range storage.AllTypes {
		if ft == storage.ConfigFile {
			continue
		}
		if fi, err := os.Stat(filepath.Join(cfg.Path, string(ft))); err != nil || !fi.IsDir() {
			t.Errorf("Create did not make %s/: %v", ft, err)
		}
	}
	// Creating again is fine while there is no config.
	be2, err := Create(ctx, cfg)
	if err != nil {
		t.Fatalf("second Create before a config exists: %v", err)
	}
	_ = be2.Close()
	if err := be.Save(ctx, storage.Handle{Type: storage.ConfigFile}, []byte("cfg"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, cfg); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("Create over an existing config = %v, want ErrExists", err)
	}
	be3, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = be3.Close() }()
	got, err := storage.LoadAll(ctx, be3, storage.Handle{Type: storage.ConfigFile})
	if err != nil || string(got) != "cfg" {
		t.Fatalf("LoadAll(config) = %q, %v", got, err)
	}
	if got, want := be3.Location(), "sftp:"+cfg.loc; got != want {
		t.Errorf("Location() = %q, want %q", got, want)
	}
}

// TestRelativePath checks a path relative to the login directory, in the
// scp-like form.
func TestRelativePath(t *testing.T) {
	srv := testsrv.SSHD(t)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	rel := fmt.Sprintf(".cache/bunker-sftp-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	abs := filepath.Join(home, rel)
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		t.Skipf("cannot write to the home directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(abs) })
	loc := fmt.Sprintf("%s@%s:%s", srv.User, srv.Host, rel)
	cfg, err := ParseConfig(loc, func(k string) string {
		return map[string]string{"BUNKER_SFTP_KEY": srv.KeyFile, "BUNKER_SFTP_KNOWN_HOSTS": srv.KnownHosts}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = srv.Port // the scp-like form has no port
	be := create(t, cfg)
	h := storage.Handle{Type: storage.KeyFile, Name: "k"}
	if err := be.Save(t.Context(), h, []byte("key"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(abs, "keys", "k")); err != nil || string(b) != "key" {
		t.Fatalf("object not under the home directory: %q, %v", b, err)
	}
}

// TestHostKeyAlgorithms checks that the known key type is negotiated,
// whichever the server or the client would prefer.
func TestHostKeyAlgorithms(t *testing.T) {
	srv := testsrv.SSHD(t)
	addr := knownhosts.Normalize(srv.Addr())
	for i, pub := range srv.HostKeys {
		t.Run(pub.Type(), func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			// An unrelated host first, then the one key of this server.
			other := knownhosts.Line([]string{"example.org"}, srv.HostKeys[1-i])
			line := knownhosts.Line([]string{addr}, pub)
			if err := os.WriteFile(kh, []byte(other+"\n"+line+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t, srv, map[string]string{"BUNKER_SFTP_KNOWN_HOSTS": kh})
			be, err := Open(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Open with only the %s host key known: %v", pub.Type(), err)
			}
			_ = be.Close()
		})
	}
}

func TestUnknownHost(t *testing.T) {
	srv := testsrv.SSHD(t)
	for _, tc := range []struct {
		name   string
		create bool
	}{{"missing file", false}, {"empty file", true}} {
		t.Run(tc.name, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			if tc.create {
				other := knownhosts.Line([]string{"example.org"}, srv.HostKeys[0])
				if err := os.WriteFile(kh, []byte(other+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg := testConfig(t, srv, map[string]string{"BUNKER_SFTP_KNOWN_HOSTS": kh})
			be, err := Open(t.Context(), cfg)
			if err == nil {
				_ = be.Close()
				t.Fatal("Open of an unknown host succeeded")
			}
			msg := err.Error()
			t.Log(msg)
			var fps []string
			for _, k := range srv.HostKeys {
				fps = append(fps, ssh.FingerprintSHA256(k))
			}
			if !strings.Contains(msg, fps[0]) && !strings.Contains(msg, fps[1]) {
				t.Errorf("error does not show the host key fingerprint (%v): %s", fps, msg)
			}
			for _, want := range []string{"unknown host", fmt.Sprintf("ssh-keyscan -p %d", srv.Port), ">> " + kh, cfg.Location()} {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q: %s", want, msg)
				}
			}
			if !storage.IsPermanent(err) {
				t.Errorf("unknown host error is not permanent: %v", err)
			}
		})
	}
}

func TestChangedHostKey(t *testing.T) {
	srv := testsrv.SSHD(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, wrong)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, srv, map[string]string{"BUNKER_SFTP_KNOWN_HOSTS": kh})
	be, err := Open(t.Context(), cfg)
	if err == nil {
		_ = be.Close()
		t.Fatal("Open with a changed host key succeeded")
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{"CHANGED", "man-in-the-middle", ssh.FingerprintSHA256(srv.HostKeys[0]), ssh.FingerprintSHA256(wrong), kh + ":1", "ssh-keygen -R"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if !storage.IsPermanent(err) {
		t.Errorf("changed host key error is not permanent: %v", err)
	}
}

// serveAgent serves an in-process ssh-agent holding keys on a unix socket
// until the test ends.
func serveAgent(t *testing.T, keys ...ed25519.PrivateKey) string {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				_ = agent.ServeAgent(kr, c)
				_ = c.Close()
			})
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return sock
}

func TestAgentAuth(t *testing.T) {
	srv := testsrv.SSHD(t)
	_, authorized := srv.NewKey(t, "", true)
	unauthorizedFile, unauthorized := srv.NewKey(t, "", false)
	authorizedFile, _ := srv.NewKey(t, "", true)

	t.Run("agent only", func(t *testing.T) {
		sock := serveAgent(t, unauthorized, authorized)
		cfg := testConfig(t, srv, map[string]string{"SSH_AUTH_SOCK": sock, "BUNKER_SFTP_KEY": ""})
		cfg.DefaultKeyFiles = nil
		be := create(t, cfg)
		if err := be.Save(t.Context(), storage.Handle{Type: storage.KeyFile, Name: "a"}, []byte("x"), storage.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("agent key refused, file key works", func(t *testing.T) {
		sock := serveAgent(t, unauthorized)
		cfg := testConfig(t, srv, map[string]string{"SSH_AUTH_SOCK": sock, "BUNKER_SFTP_KEY": authorizedFile})
		create(t, cfg)
	})
	t.Run("nothing authorized", func(t *testing.T) {
		sock := serveAgent(t, unauthorized)
		cfg := testConfig(t, srv, map[string]string{"SSH_AUTH_SOCK": sock, "BUNKER_SFTP_KEY": unauthorizedFile})
		be, err := Open(t.Context(), cfg)
		if err == nil {
			_ = be.Close()
			t.Fatal("Open with no authorized key succeeded")
		}
		t.Log(err)
		if !errors.Is(err, storage.ErrAuth) {
			t.Errorf("Open with no authorized key = %v, want ErrAuth", err)
		}
		for _, want := range []string{"ssh-agent (1 keys)", unauthorizedFile, srv.User} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
	})
	t.Run("agent socket gone", func(t *testing.T) {
		cfg := testConfig(t, srv, map[string]string{"SSH_AUTH_SOCK": filepath.Join(t.TempDir(), "nope.sock")})
		be := create(t, cfg) // falls back to the key file
		_ = be.Close()
	})
}

func TestEncryptedKey(t *testing.T) {
	srv := testsrv.SSHD(t)
	const pass = "correct horse battery staple"
	keyFile, _ := srv.NewKey(t, pass, true)

	cfg := testConfig(t, srv, map[string]string{"BUNKER_SFTP_KEY": keyFile, "BUNKER_SFTP_KEY_PASSPHRASE": pass})
	if strings.Contains(cfg.String(), pass) || strings.Contains(fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), pass) {
		t.Errorf("the config's string form shows the passphrase")
	}
	be := create(t, cfg)
	if err := be.Save(t.Context(), storage.Handle{Type: storage.KeyFile, Name: "a"}, []byte("x"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, pass, want string }{
		{"no passphrase", "", "BUNKER_SFTP_KEY_PASSPHRASE"},
		{"wrong passphrase", "wrong", "decrypt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, srv, map[string]string{"BUNKER_SFTP_KEY": keyFile, "BUNKER_SFTP_KEY_PASSPHRASE": tc.pass})
			be, err := Open(t.Context(), cfg)
			if err == nil {
				_ = be.Close()
				t.Fatal("Open succeeded")
			}
			t.Log(err)
			if !errors.Is(err, storage.ErrAuth) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open = %v, want ErrAuth mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), pass) {
				t.Errorf("error shows the passphrase")
			}
		})
	}
}

func TestBadKeyFile(t *testing.T) {
	srv := testsrv.SSHD(t)
	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, key := range map[string]string{"missing": filepath.Join(t.TempDir(), "nope"), "junk": junk} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, srv, map[string]string{"BUNKER_SFTP_KEY": key})
			be, err := Open(t.Context(), cfg)
			if err == nil {
				_ = be.Close()
				t.Fatal("Open succeeded")
			}
			t.Log(err)
			if !storage.IsPermanent(err) || !strings.Contains(err.Error(), key) {
				t.Errorf("Open = %v, want a permanent error naming %s", err, key)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	srv := testsrv.SSHD(t)
	cfg := testConfig(t, srv, nil)
	cfg.Port = testsrv.FreePort(t, 0)
	cfg.loc = ""
	be, err := Open(t.Context(), cfg)
	if err == nil {
		_ = be.Close()
		t.Fatal("Open of a closed port succeeded")
	}
	t.Log(err)
	if storage.IsPermanent(err) {
		t.Errorf("connection refused is permanent: %v", err)
	}
	if !strings.Contains(err.Error(), cfg.Location()) {
		t.Errorf("error does not name the location: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if be, err := Open(ctx, testConfig(t, srv, nil)); err == nil {
		_ = be.Close()
		t.Fatal("Open with a canceled context succeeded")
	} else if !errors.Is(err, context.Canceled) {
		t.Errorf("Open with a canceled context = %v, want context.Canceled", err)
	}
}

// tempFiles returns the temporary files under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestFailedSaveLeavesNoTemp(t *testing.T) {
	srv := testsrv.SSHD(t)
	cfg := testConfig(t, srv, nil)
	be := create(t, cfg)
	ctx := t.Context()

	// Conditional create of an existing object.
	h := storage.Handle{Type: storage.PackFile, Name: "ab01"}
	if err := be.Save(ctx, h, []byte("one"), storage.SaveOptions{IfNotExists: true}); err != nil {
		t.Fatal(err)
	}
	err := be.Save(ctx, h, []byte("two"), storage.SaveOptions{IfNotExists: true})
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("conditional create of an existing object = %v, want ErrExists", err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), cfg.Location()) || !strings.Contains(err.Error(), "packs/ab01") {
		t.Errorf("error does not name the location and the object: %v", err)
	}

	// A directory where the object should be: the rename fails after the
	// temporary file was written.
	blocked := storage.Handle{Type: storage.KeyFile, Name: "blocked"}
	if err := os.MkdirAll(filepath.Join(cfg.Path, "keys", "blocked", "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, opts := range []storage.SaveOptions{{}, {IfNotExists: true}} {
		if err := be.Save(ctx, blocked, []byte("data"), opts); err == nil {
			t.Errorf("Save over a directory (%+v) succeeded", opts)
		} else {
			t.Log(err)
		}
	}
	// A file where the shard directory should be: creating it fails.
	if err := os.WriteFile(filepath.Join(cfg.Path, "packs", "cd"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, storage.Handle{Type: storage.PackFile, Name: "cd01"}, []byte("data"), storage.SaveOptions{}); err == nil {
		t.Errorf("Save into a shard that is a file succeeded")
	} else {
		t.Log(err)
	}
	if left := tempFiles(t, cfg.Path); len(left) > 0 {
		t.Errorf("failed saves left temporary files: %q", left)
	}
	// Stat of a directory is not an object.
	if _, err := be.Stat(ctx, blocked); err == nil {
		t.Errorf("Stat of a directory succeeded")
	}
}

func TestListSkipsJunk(t *testing.T) {
	srv := testsrv.SSHD(t)
	cfg := testConfig(t, srv, nil)
	be := create(t, cfg)
	for _, p := range []string{"keys/.tmp-123", "keys/UPPER", "packs/ab/.tmp-x", "packs/ab/cd12", "packs/.hidden/ab", ".tmp-config"} {
		full := filepath.Join(cfg.Path, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := be.Save(t.Context(), storage.Handle{Type: storage.PackFile, Name: "ab12"}, []byte("p"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ft := range storage.AllTypes {
		var names []string
		if err := be.List(t.Context(), ft, func(fi storage.FileInfo) error {
			names = append(names, fi.Name)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := ""
		if ft == storage.PackFile {
			want = "ab12"
		}
		if strings.Join(names, ",") != want {
			t.Errorf("List(%s) = %q, want %q", ft, names, want)
		}
	}
}

// TestReconnect kills sshd in the middle of a Load, checks that the
// requests fail cleanly and retryably, then starts sshd again on the same
// port and checks that the same Backend works again.
func TestReconnect(t *testing.T) {
	srv := testsrv.SSHD(t)
	cfg := testConfig(t, srv, nil)
	be := create(t, cfg)
	ctx := t.Context()
	h := storage.Handle{Type: storage.PackFile, Name: "big"}
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	if err := be.Save(ctx, h, data, storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}

	killed := make(chan struct{})
	var loadErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		loadErr = be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
			var b [1]byte
			if _, err := io.ReadFull(rd, b[:]); err != nil {
				return err
			}
			<-killed
			_, err := io.Copy(io.Discard, rd)
			return err
		})
	}()
	time.Sleep(100 * time.Millisecond)
	srv.Kill()
	close(killed)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Load did not return after sshd was killed")
	}
	if loadErr == nil {
		t.Fatal("Load succeeded although sshd was killed in the middle")
	}
	t.Logf("Load while sshd was killed: %v", loadErr)
	if storage.IsPermanent(loadErr) {
		t.Errorf("error of a lost connection is permanent: %v", loadErr)
	}
	if !strings.Contains(loadErr.Error(), cfg.Location()) {
		t.Errorf("error does not name the location: %v", loadErr)
	}

	// While sshd is down every request fails, retryably.
	for range 2 * cfg.Connections {
		_, err := be.Stat(ctx, h)
		if err == nil {
			t.Fatal("Stat succeeded while sshd is down")
		}
		if storage.IsPermanent(err) || errors.Is(err, storage.ErrNotExist) {
			t.Fatalf("Stat while sshd is down = %v, want a transient error", err)
		}
	}
	t.Logf("Stat while sshd is down: %v", func() error { _, err := be.Stat(ctx, h); return err }())

	srv.Start(t)
	for i := range 2 * cfg.Connections {
		if _, err := be.Stat(ctx, h); err != nil {
			t.Fatalf("Stat %d after sshd came back: %v", i, err)
		}
		got, err := storage.LoadAll(ctx, be, h)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("LoadAll %d after sshd came back: %d bytes, %v", i, len(got), err)
		}
		if err := be.Save(ctx, storage.Handle{Type: storage.SnapshotFile, Name: fmt.Sprintf("s%d", i)}, []byte("x"), storage.SaveOptions{}); err != nil {
			t.Fatalf("Save %d after sshd came back: %v", i, err)
		}
	}
}

// TestSaveDuringKill saves concurrently while sshd dies: every Save either
// succeeds (and the object is whole) or fails retryably.
func TestSaveDuringKill(t *testing.T) {
	srv := testsrv.SSHD(t)
	cfg := testConfig(t, srv, nil)
	be := create(t, cfg)
	ctx := t.Context()
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	var saved atomic.Int64
	for i := range errs {
		wg.Go(func() {
			for j := 0; ; j++ {
				err := be.Save(ctx, storage.Handle{Type: storage.PackFile, Name: fmt.Sprintf("%02x%d", i, j)}, data, storage.SaveOptions{})
				if err != nil {
					errs[i] = err
					return
				}
				saved.Add(1)
			}
		})
	}
	for deadline := time.Now().Add(20 * time.Second); saved.Load() < 8 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	srv.Kill()
	wg.Wait()
	for i, err := range errs {
		if storage.IsPermanent(err) {
			t.Errorf("saver %d: permanent error from a killed server: %v", i, err)
		}
	}
	t.Logf("Save while sshd was killed: %v", errs[0])
	srv.Start(t)
	n := 0
	err := be.List(ctx, storage.PackFile, func(fi storage.FileInfo) error {
		n++
		if fi.Size != int64(len(data)) {
			return fmt.Errorf("pack %s has %d bytes, want %d (torn write?)", fi.Name, fi.Size, len(data))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d packs saved before the kill, %d listed", saved.Load(), n)
	if int64(n) < saved.Load() {
		t.Errorf("%d packs saved, but only %d listed", saved.Load(), n)
	}
}

func TestClosed(t *testing.T) {
	srv := testsrv.SSHD(t)
	be := create(t, testConfig(t, srv, nil))
	if err := be.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := be.Stat(t.Context(), storage.Handle{Type: storage.ConfigFile}); err == nil {
		t.Fatal("Stat after Close succeeded")
	}
	if err := be.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestRemoveStaleTemp(t *testing.T) {
	srv := testsrv.SSHD(t)
	cfg := testConfig(t, srv, nil)
	be := create(t, cfg)
	ctx := t.Context()
	if err := be.Save(ctx, storage.Handle{Type: storage.PackFile, Name: "ab01"}, []byte("pack"), storage.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	files := map[string]bool{ // path below the repository: stale?
		"index/.tmp-0001":      true,
		"packs/ab/.tmp-0002":   true,
		".tmp-0003":            true,
		"snapshots/.tmp-0004":  false, // fresh: a Save may be writing it
		"packs/ab/ab01":        false, // an object
		"index/.not-temp-file": false,
	}
	for rel, stale := range files {
		p := filepath.Join(cfg.Path, rel)
		if rel == "packs/ab/ab01" {
			continue // saved above
		}
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if stale {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := be.RemoveStaleTemp(ctx, time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("RemoveStaleTemp = %d, %v; want 3", n, err)
	}
	for rel, stale := range files {
		_, err := os.Stat(filepath.Join(cfg.Path, rel))
		if gone := os.IsNotExist(err); gone != stale {
			t.Errorf("%s: removed %v, want %v", rel, gone, stale)
		}
	}
	if _, ok := storage.Find[storage.TempCleaner](retry.New(be, retry.Options{})); !ok {
		t.Error("prune cannot find RemoveStaleTemp through the retry decorator")
	}
}
