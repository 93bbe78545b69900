package cli_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/bcrypt"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/rest"
)

// serveOutput is a stdout that the test reads while serve writes it.
type serveOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *serveOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *serveOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// TestServe runs "bunker serve" in-process, uses it through the rest:
// backend, and stops it the way a signal does (canceling the context, in
// serveCLI's cleanup).
func TestServe(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	must(t, err)
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, htpasswd, []byte("alice:"+string(hash)+"\n"))

	srv := serveCLI(t, nil, "--path", dir, "--htpasswd", htpasswd, "--private-repos", "--append-only")
	start := srv.start
	url, fp := str(start["url"]), str(start["fingerprint"])
	if !strings.HasPrefix(url, "https://127.0.0.1:") || !strings.HasPrefix(fp, "sha256:") || start["new_certificate"] != true {
		t.Fatalf("serving line %v", start)
	}
	env := map[string]string{rest.EnvPassword: "pw", rest.EnvFingerprint: fp}
	cfg, err := rest.ParseConfig(strings.Replace(url, "https://", "https://alice@", 1)+"alice/repo", func(k string) string { return env[k] })
	must(t, err)
	be, err := rest.Create(t.Context(), cfg)
	must(t, err)
	if f := be.Features(); !f.AppendOnly {
		t.Errorf("Features() = %+v, want append-only", f)
	}
	// An append-only server takes a snapshot only under the BLAKE3-256
	// of its bytes.
	sum := blake3.Sum256([]byte("snapshot"))
	h := storage.Handle{Type: storage.SnapshotFile, Name: hex.EncodeToString(sum[:])}
	if err := be.Save(t.Context(), storage.Handle{Type: storage.SnapshotFile, Name: "s1"}, []byte("snapshot"), storage.SaveOptions{}); err == nil {
		t.Error("save of a snapshot under a name that is not its hash succeeded on an append-only server")
	}
	must(t, be.Save(t.Context(), h, []byte("snapshot"), storage.SaveOptions{}))
	got, err := storage.LoadAll(t.Context(), be, h)
	if err != nil || string(got) != "snapshot" {
		t.Fatalf("load = %q, %v", got, err)
	}
	if err := be.Remove(t.Context(), h); err == nil {
		t.Error("remove on an append-only server succeeded")
	}
	_ = be.Close()

	// The whole program against the server: init, backup, snapshots
	// through -r rest:… on the append-only server.
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "file"), randBytes(1, 100<<10))
	cliEnv := map[string]string{"BUNKER_PASSWORD": testPassword, rest.EnvPassword: "pw", rest.EnvFingerprint: fp}
	e := &repoEnv{t: t, repo: "rest:" + strings.Replace(url, "https://", "https://alice@", 1) + "alice/cli", env: cliEnv}
	e.mustRun("--insecure-kdf-for-tests", "init")
	e.mustRun("backup", src)
	if n := len(e.snapshots()); n != 1 {
		t.Errorf("%d snapshots, want 1", n)
	}

	// serveCLI's cleanup stops the server the way a signal does and
	// checks that it exits 0.
	if _, err := os.Stat(filepath.Join(dir, "alice", "repo", "snapshots", h.Name)); err != nil {
		t.Errorf("object not in the served directory: %v", err)
	}
}

func TestServeRefusesUnsafeSetups(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(t.TempDir(), "htpasswd")
	writeFile(t, bad, []byte("alice:$apr1$x$y\n"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--path", dir}, "--no-auth"},
		{[]string{"serve", "--path", dir, "--htpasswd", bad}, "only bcrypt"},
		{[]string{"serve", "--path", dir, "--no-auth", "--private-repos"}, "--private-repos"},
		{[]string{"serve", "--path", dir, "--no-auth", "--max-request-size", "lots"}, "--max-request-size"},
		{[]string{"serve", "--no-auth"}, "--path"},
		// One user's share of upload memory must fit one largest body
		// while it grows, and may not be all of the budget.
		{[]string{"serve", "--path", dir, "--no-auth", "--max-upload-memory-per-user", "300MiB"}, "twice the largest request"},
		{[]string{"serve", "--path", dir, "--no-auth", "--max-upload-memory", "1GiB", "--max-upload-memory-per-user", "768MiB"}, "no user can take all"},
		{[]string{"serve", "--path", dir, "--no-auth", "--min-transfer-rate", "-5"}, "--min-transfer-rate"},
		{[]string{"serve", "--path", dir, "--no-auth", "--transfer-window", "-1s"}, "--transfer-window"},
		{[]string{"serve", "--path", dir, "--no-auth", "--max-concurrent", "-1"}, "--max-concurrent"},
	} {
		r := runApp(t, strings.NewReader(""), func(string) string { return "" }, tc.args...)
		if r.Code != cli.ExitError || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%s: want exit 1 with %q:\n%s", strings.Join(tc.args, " "), tc.want, fmt.Sprint(r))
		}
	}
}
