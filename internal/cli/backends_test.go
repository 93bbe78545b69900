package cli_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/internal/restserver"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"golang.org/x/crypto/bcrypt"
)

// remote is a repository location on a real server started for the test,
// with the environment that reaches it.
type remote struct {
	loc string
	env map[string]string
}

var bucketSeq int

// s3Remote starts versitygw and names a fresh bucket on it.
func s3Remote(t *testing.T) remote {
	t.Helper()
	r, _ := s3RemoteOn(testsrv.Versitygw(t), "bunker-e2e")
	return r
}

// s3RemoteOn names a fresh bucket on s and returns it with the remote.
func s3RemoteOn(s *testsrv.S3Server, name string) (remote, string) {
	bucketSeq++
	bucket := fmt.Sprintf("%s-%d", name, bucketSeq)
	return remote{
		loc: fmt.Sprintf("s3:%s/%s/repo", s.URL, bucket),
		env: map[string]string{"AWS_ACCESS_KEY_ID": s.AccessKey, "AWS_SECRET_ACCESS_KEY": s.SecretKey, "AWS_REGION": s.Region},
	}, bucket
}

func sftpRemote(t *testing.T) remote {
	t.Helper()
	s := testsrv.SSHD(t)
	return remote{
		loc: fmt.Sprintf("sftp://%s@%s/%s", s.User, s.Addr(), filepath.Join(s.Dir, "repo")),
		env: map[string]string{"BUNKER_SFTP_KEY": s.KeyFile, "BUNKER_SFTP_KNOWN_HOSTS": s.KnownHosts},
	}
}

func azureRemote(t *testing.T) remote {
	t.Helper()
	s := testsrv.Azurite(t)
	return remote{
		loc: "azure:bunker-e2e:/repo",
		env: map[string]string{"AZURE_STORAGE_ACCOUNT": s.Account, "AZURE_STORAGE_KEY": s.Key, "BUNKER_AZURE_ENDPOINT": s.Endpoint},
	}
}

func gcsRemote(t *testing.T) remote {
	t.Helper()
	s := testsrv.FakeGCS(t)
	return remote{
		loc: "gs:bunker-e2e:/repo",
		env: map[string]string{"STORAGE_EMULATOR_HOST": s.Host, "GOOGLE_PROJECT_ID": "test"},
	}
}

// remoteEnv is a repoEnv on r whose metadata cache lives in the test's
// temporary directory.
func remoteEnv(t *testing.T, r remote) *repoEnv {
	e := newRepoEnv(t, r.loc)
	maps.Copy(e.env, r.env)
	e.env["BUNKER_CACHE_DIR"] = filepath.Join(t.TempDir(), "cache")
	return e
}

// TestBackendsEndToEnd runs init, two backups, restore, check --read-data,
// forget and prune, and a restore after pruning against every backend on
// its real server.
func TestBackendsEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) remote
	}{
		{"local", func(t *testing.T) remote { return remote{loc: filepath.Join(t.TempDir(), "repo")} }},
		{"s3", s3Remote},
		{"sftp", sftpRemote},
		{"azure", azureRemote},
		{"gcs", gcsRemote},
		{"rest", restRemote},
	} {
		t.Run(tc.name, func(t *testing.T) {
			endToEnd(t, remoteEnv(t, tc.start(t)))
		})
	}
}

func endToEnd(t *testing.T, e *repoEnv) {
	t.Helper()
	e.mustRun("--insecure-kdf-for-tests", "init", "--pack-size", "1")
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "big.bin"), randBytes(71, 3<<20+17))
	writeFile(t, filepath.Join(src, "docs", "a.txt"), []byte(strings.Repeat("alpha\n", 1000)))
	writeFile(t, filepath.Join(src, "docs", "b.txt"), []byte("beta\n"))
	s1, _ := e.backupJSON(0, src)
	first := treeDigest(t, src)
	writeFile(t, filepath.Join(src, "more.bin"), randBytes(72, 2<<20))
	must(t, os.Remove(filepath.Join(src, "docs", "b.txt")))
	s2, _ := e.backupJSON(0, src)
	if num(s2["files_new"])+num(s2["files_changed"]) == 0 && num(s2["blobs_added"]) == 0 {
		t.Logf("second backup summary: %v", s2)
	}
	second := treeDigest(t, src)
	if n := len(e.snapshots()); n != 2 {
		t.Fatalf("%d snapshots, want 2", n)
	}

	out := filepath.Join(t.TempDir(), "out")
	e.mustRun("restore", "latest:"+src, "--target", out, "--verify")
	assertSameTree(t, second, treeDigest(t, out))
	out1 := filepath.Join(t.TempDir(), "out1")
	e.mustRun("restore", str(s1["snapshot_id"])+":"+src, "--target", out1, "--verify")
	assertSameTree(t, first, treeDigest(t, out1))

	e.mustRun("check", "--read-data")
	e.mustRun("forget", "--keep-last", "1", "--prune", "--max-unused", "0")
	if n := len(e.snapshots()); n != 1 {
		t.Fatalf("%d snapshots after forget, want 1", n)
	}
	e.mustRun("check", "--read-data")
	out2 := filepath.Join(t.TempDir(), "out2")
	e.mustRun("restore", "latest:"+src, "--target", out2, "--verify")
	assertSameTree(t, second, treeDigest(t, out2))
}

// TestCopyS3ToSFTP copies snapshots from an S3 repository into an SFTP
// repository that already holds part of the data: only missing blobs move,
// a second copy moves nothing, and the copies restore bit-exactly.
func TestCopyS3ToSFTP(t *testing.T) {
	s3r, sftpr := s3Remote(t), sftpRemote(t)
	env := map[string]string{}
	maps.Copy(env, s3r.env)
	maps.Copy(env, sftpr.env)
	src := remoteEnv(t, remote{loc: s3r.loc, env: env})
	dst := remoteEnv(t, remote{loc: sftpr.loc, env: env})
	src.mustRun("--insecure-kdf-for-tests", "init", "--pack-size", "1")
	dst.mustRun("--insecure-kdf-for-tests", "init", "--pack-size", "1", "--copy-chunker-params-from", s3r.loc)

	dir := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(dir, "shared.bin"), randBytes(81, 2<<20))
	// The destination already holds shared.bin from a backup of its own.
	dst.backupJSON(0, dir)
	writeFile(t, filepath.Join(dir, "only-in-s3.bin"), randBytes(82, 2<<20))
	src.backupJSON(0, dir)
	want := treeDigest(t, dir)

	dst.env["BUNKER_FROM_PASSWORD"] = testPassword
	s := dst.mustRun("--json", "copy", "--from-repo", s3r.loc).Message(t, "summary")
	if num(s["snapshots_copied"]) != 1 {
		t.Fatalf("copy: %v", s)
	}
	// Only only-in-s3.bin's blobs (2 MiB, about a dozen chunks) and the
	// trees are new; shared.bin's chunks were already there.
	added := num(s["bytes_stored"])
	if added == 0 || added > 2<<20+256<<10 {
		t.Errorf("copy stored %d bytes, want about 2 MiB (only the missing file): %v", added, s)
	}
	s = dst.mustRun("--json", "copy", "--from-repo", s3r.loc).Message(t, "summary")
	if num(s["snapshots_copied"]) != 0 || num(s["blobs_added"]) != 0 {
		t.Errorf("second copy moved something: %v", s)
	}
	dst.mustRun("check", "--read-data")
	out := filepath.Join(t.TempDir(), "out")
	dst.mustRun("restore", "latest:"+dir, "--target", out, "--verify")
	assertSameTree(t, want, treeDigest(t, out))
}

// restServer is an in-process bunker serve over TLS with one user.
type restServer struct {
	url, fingerprint string
	stop             func()
}

const restUser, restPassword = "backup", "rest secret"

func startREST(t *testing.T, appendOnly bool, dir string) *restServer {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(restPassword), bcrypt.MinCost)
	must(t, err)
	pwfile := filepath.Join(t.TempDir(), "htpasswd")
	must(t, os.WriteFile(pwfile, []byte(restUser+":"+string(h)+"\n"), 0o600))
	users, err := restserver.LoadHtpasswd(pwfile)
	must(t, err)
	srv, err := restserver.New(restserver.Options{Dir: dir, Users: users, AppendOnly: appendOnly})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &restServer{url: "https://" + restUser + "@" + ln.Addr().String(), fingerprint: srv.Fingerprint(), stop: stop}
}

func (s *restServer) remote(repo string) remote {
	return remote{
		loc: "rest:" + s.url + "/" + repo,
		env: map[string]string{"BUNKER_REST_PASSWORD": restPassword, "BUNKER_REST_FINGERPRINT": s.fingerprint},
	}
}

func restRemote(t *testing.T) remote {
	t.Helper()
	return startREST(t, false, t.TempDir()).remote("repo")
}

// TestCheckBypassesCache damages a tree pack in the store while the local
// metadata cache holds a good copy: check must read the store and fail,
// and must not use the persistent cache at all.
func TestCheckBypassesCache(t *testing.T) {
	dir := t.TempDir()
	e := remoteEnv(t, startREST(t, false, dir).remote("repo"))
	e.mustRun("--insecure-kdf-for-tests", "init")
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a", "b.txt"), []byte("hello"))
	e.backupJSON(0, src)
	e.mustRun("ls", "latest") // reads the trees, so the cache has their pack
	var cached []string
	cacheRoot := e.env["BUNKER_CACHE_DIR"]
	must(t, filepath.WalkDir(cacheRoot, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(p)) == "packs" {
			cached = append(cached, filepath.Base(p))
		}
		return err
	}))
	if len(cached) == 0 {
		t.Fatal("no tree pack in the metadata cache")
	}
	modifyFile(t, filepath.Join(dir, "repo", "packs", cached[0][:2], cached[0]), flipByte(-1))
	// check neither reads the persistent cache nor fills it: pointed at
	// an empty cache directory, it leaves it empty.
	e.env["BUNKER_CACHE_DIR"] = filepath.Join(t.TempDir(), "fresh-cache")
	if r := e.run("check", "--read-data"); r.Code == 0 {
		t.Fatalf("check passed over a damaged tree pack (read from the cache?):\n%s", r)
	}
	if _, err := os.Stat(e.env["BUNKER_CACHE_DIR"]); !os.IsNotExist(err) {
		t.Errorf("check used the metadata cache directory (%v)", err)
	}
}

// TestRemoteRestoreReadahead restores many small files, files that share
// content, and a file spanning several packs from a remote repository,
// whose restore reads ranges of packs ahead.
func TestRemoteRestoreReadahead(t *testing.T) {
	e := remoteEnv(t, restRemote(t))
	e.mustRun("--insecure-kdf-for-tests", "init", "--pack-size", "1")
	src := filepath.Join(t.TempDir(), "src")
	for i := 0; i < 300; i++ {
		writeFile(t, filepath.Join(src, "small", fmt.Sprintf("f%03d", i)), randBytes(uint64(1000+i), 100+i*37))
	}
	shared := randBytes(2000, 200<<10)
	for i := 0; i < 5; i++ {
		writeFile(t, filepath.Join(src, "dup", fmt.Sprintf("copy%d", i)), shared)
	}
	writeFile(t, filepath.Join(src, "big.bin"), randBytes(2001, 5<<20+3))
	e.backupJSON(0, src)
	want := treeDigest(t, src)
	for _, sub := range []string{"", "/small", "/big.bin"} {
		out := filepath.Join(t.TempDir(), "out")
		e.mustRun("restore", "latest:"+src+sub, "--target", out, "--verify")
		if sub == "" {
			assertSameTree(t, want, treeDigest(t, out))
		}
	}
}
