package cli_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/rest"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// lockedS3 names a fresh bucket on s and returns a repoEnv for it.
func lockedS3(t *testing.T, s *testsrv.S3Server) (*repoEnv, string) {
	t.Helper()
	r, bucket := s3RemoteOn(s, "bunker-locked")
	return remoteEnv(t, r), bucket
}

// minioClient is the attacker's (or the test's) own S3 client with the
// backup host's credentials.
func minioClient(t *testing.T, s *testsrv.S3Server) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: s.Region, BucketLookup: minio.BucketLookupPath})
	must(t, err)
	return c
}

func keysUnder(t *testing.T, c *minio.Client, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	for obj := range c.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		must(t, obj.Err)
		keys = append(keys, obj.Key)
	}
	return keys
}

// TestObjectLockRetention: with --object-lock every data object is locked;
// forget leaves locked snapshots alone and says until when; prune never
// deletes a locked pack and reports it; once locks end, forget and prune
// free the space, and prune extends the retention of what is still needed.
func TestObjectLockRetention(t *testing.T) {
	s := testsrv.Versitygw(t)
	e, bucket := lockedS3(t, s)
	const retention = 3 * time.Second
	e.mustRun("--insecure-kdf-for-tests", "init", "--pack-size", "1", "--object-lock", "governance", "--retention", retention.String())
	c := minioClient(t, s)
	if _, _, _, _, err := c.GetObjectLockConfig(context.Background(), bucket); err != nil {
		t.Fatalf("the bucket has no Object Lock: %v", err)
	}

	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.bin"), randBytes(91, 600<<10))
	writeFile(t, filepath.Join(src, "b.bin"), randBytes(92, 300<<10))
	e.backupJSON(0, src)
	must(t, os.Remove(filepath.Join(src, "b.bin")))
	writeFile(t, filepath.Join(src, "c.bin"), randBytes(93, 300<<10))
	e.backupJSON(0, src)
	want := treeDigest(t, src)

	// Every pack is locked: a version delete is refused.
	packs := keysUnder(t, c, bucket, "repo/packs/")
	if len(packs) == 0 {
		t.Fatal("no packs in the bucket")
	}
	info, err := c.StatObject(context.Background(), bucket, packs[0], minio.StatObjectOptions{})
	must(t, err)
	if err := c.RemoveObject(context.Background(), bucket, packs[0], minio.RemoveObjectOptions{VersionID: info.VersionID}); err == nil {
		t.Fatalf("deleting a version of locked pack %s succeeded", packs[0])
	}

	// Within the retention, forget keeps the snapshot and says why.
	r := e.mustRun("forget", "--keep-last", "1")
	if !strings.Contains(r.Stderr+r.Stdout, "under Object Lock until") {
		t.Errorf("forget of a locked snapshot does not explain:\n%s", r)
	}
	if n := len(e.snapshots()); n != 2 {
		t.Fatalf("%d snapshots after forget within retention, want 2", n)
	}

	// An unused locked pack (as an interrupted backup leaves) is reported,
	// not deleted.
	junk := "repo/packs/ff/" + strings.Repeat("f", 64)
	_, err = c.PutObject(context.Background(), bucket, junk, bytes.NewReader([]byte("left by a crash")), 15, minio.PutObjectOptions{
		Mode: minio.Governance, RetainUntilDate: time.Now().Add(time.Hour).UTC()})
	must(t, err)
	p := e.mustRun("--json", "prune").Message(t, "prune")
	res := p["result"].(map[string]any)
	if num(res["locked_packs"]) < 1 {
		t.Errorf("prune did not report the locked unused pack: %v", res)
	}
	ji, err := c.StatObject(context.Background(), bucket, junk, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("prune deleted (or hid) a locked pack: %v", err)
	}
	// Governance locks yield to a privileged delete: clear the junk away
	// so that check has nothing to complain about.
	must(t, c.RemoveObject(context.Background(), bucket, junk, minio.RemoveObjectOptions{VersionID: ji.VersionID, GovernanceBypass: true}))

	// After the retention, forget and prune free snapshot 1's data.
	time.Sleep(retention + time.Second)
	e.mustRun("forget", "--keep-last", "1")
	if n := len(e.snapshots()); n != 1 {
		t.Fatalf("%d snapshots after forget past retention, want 1", n)
	}
	p = e.mustRun("--json", "prune", "--max-unused", "0").Message(t, "prune")
	res = p["result"].(map[string]any)
	if num(res["packs_deleted"]) == 0 {
		t.Errorf("prune past retention deleted nothing: %v", res)
	}
	if num(res["retention_extended"]) == 0 {
		t.Errorf("prune did not extend the retention of the objects still needed: %v", res)
	}
	e.mustRun("check", "--read-data")
	out := filepath.Join(t.TempDir(), "out")
	e.mustRun("restore", "latest:"+src, "--target", out, "--verify")
	assertSameTree(t, want, treeDigest(t, out))
}

// TestAttackerObjectLockedS3 plays an attacker holding the backup host's S3
// credentials against an object-locked, versioned bucket: the attacker
// deletes packs, overwrites snapshots and index files and deletes the
// config and keys. Version deletes are refused; what the plain deletes and
// overwrites hid is read back with --repo-as-of, and repair rollback
// restores the repository so that every snapshot restores bit-exactly.
func TestAttackerObjectLockedS3(t *testing.T) {
	s := testsrv.SeaweedFS(t)
	e, bucket := lockedS3(t, s)
	e.mustRun("--insecure-kdf-for-tests", "init", "--pack-size", "1", "--object-lock", "compliance", "--retention", "1d")
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.bin"), randBytes(101, 1<<20))
	writeFile(t, filepath.Join(src, "notes.txt"), []byte("first"))
	s1, _ := e.backupJSON(0, src)
	want1 := treeDigest(t, src)
	writeFile(t, filepath.Join(src, "b.bin"), randBytes(102, 1<<20))
	writeFile(t, filepath.Join(src, "notes.txt"), []byte("second"))
	s2, _ := e.backupJSON(0, src)
	want2 := treeDigest(t, src)
	snaps := map[string]map[string]string{str(s1["snapshot_id"]): want1, str(s2["snapshot_id"]): want2}

	time.Sleep(1100 * time.Millisecond)
	goodTime := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)

	// The attack.
	ctx := context.Background()
	c := minioClient(t, s)
	all := keysUnder(t, c, bucket, "repo/")
	var attacked int
	for _, key := range all {
		info, err := c.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
		must(t, err)
		// Deleting the version itself is refused: compliance lock.
		if strings.Contains(key, "/packs/") || strings.HasSuffix(key, "/config") {
			if err := c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID}); err == nil {
				t.Fatalf("attacker deleted locked version of %s", key)
			}
		}
		switch {
		case strings.Contains(key, "/packs/"), strings.Contains(key, "/keys/"), strings.HasSuffix(key, "/config"):
			// A plain delete only adds a delete marker.
			must(t, c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}))
			attacked++
		case strings.Contains(key, "/snapshots/"), strings.Contains(key, "/index/"):
			junk := []byte("ransom note: pay up")
			_, err := c.PutObject(ctx, bucket, key, bytes.NewReader(junk), int64(len(junk)), minio.PutObjectOptions{})
			must(t, err)
			attacked++
		}
	}
	if attacked == 0 {
		t.Fatal("the attacker found nothing to attack")
	}
	// A junk snapshot added after the good time.
	_, err := c.PutObject(ctx, bucket, "repo/snapshots/"+strings.Repeat("0", 64), bytes.NewReader([]byte("junk")), 4, minio.PutObjectOptions{})
	must(t, err)

	// The repository as it is now is wrecked.
	if r := e.run("snapshots"); r.Code == 0 {
		t.Fatalf("snapshots on the vandalised repository succeeded:\n%s", r)
	}
	// As of the good time, everything is there.
	asOf := goodTime.Format(time.RFC3339Nano)
	list := e.mustRun("--json", "--repo-as-of", asOf, "snapshots")
	for id := range snaps {
		if !strings.Contains(list.Stdout, id) {
			t.Errorf("snapshot %s missing as of %s:\n%s", id, asOf, list.Stdout)
		}
	}
	e.mustRun("--repo-as-of", asOf, "check", "--read-data")
	for id, want := range snaps {
		out := filepath.Join(t.TempDir(), "asof-"+id[:8])
		e.mustRun("--repo-as-of", asOf, "restore", id+":"+src, "--target", out, "--verify")
		assertSameTree(t, want, treeDigest(t, out))
	}
	// Writing through the as-of view is refused.
	if r := e.run("--repo-as-of", asOf, "backup", src); r.Code == 0 {
		t.Errorf("backup through --repo-as-of succeeded:\n%s", r)
	}

	// Roll back and use the repository as before.
	e.mustRun("--json", "repair", "rollback", "--to", asOf)
	e.mustRun("check", "--read-data")
	if n := len(e.snapshots()); n != 2 {
		t.Fatalf("%d snapshots after rollback, want 2", n)
	}
	for id, want := range snaps {
		out := filepath.Join(t.TempDir(), "rolled-"+id[:8])
		e.mustRun("restore", id+":"+src, "--target", out, "--verify")
		assertSameTree(t, want, treeDigest(t, out))
	}
	e.backupJSON(0, src)
}

// TestAttackerAppendOnlyREST plays an attacker holding the backup host's
// credentials against bunker serve --append-only: every delete, overwrite
// and truncation is refused, backups keep working, forget and prune explain
// that they need a maintenance credential, and every snapshot restores.
func TestAttackerAppendOnlyREST(t *testing.T) {
	dir := t.TempDir()
	srv := startREST(t, true, dir)
	e := remoteEnv(t, srv.remote("repo"))
	e.mustRun("--insecure-kdf-for-tests", "init", "--pack-size", "1")
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.bin"), randBytes(111, 1<<20))
	s1, _ := e.backupJSON(0, src)
	want1 := treeDigest(t, src)
	writeFile(t, filepath.Join(src, "b.bin"), randBytes(112, 1<<20))
	s2, _ := e.backupJSON(0, src)
	want2 := treeDigest(t, src)

	// The attack, through the client backend with the same credentials.
	ctx := context.Background()
	cfg, err := rest.ParseConfig(strings.TrimPrefix(srv.remote("repo").loc, "rest:"), e.getenv)
	must(t, err)
	be, err := rest.Open(ctx, cfg)
	must(t, err)
	defer func() { _ = be.Close() }()
	if !be.Features().AppendOnly {
		t.Error("the client does not see that the server is append-only")
	}
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, storage.ErrPermission) {
			t.Errorf("%s: %v, want ErrPermission", what, err)
		}
	}
	var attempts int
	for _, typ := range []storage.FileType{storage.PackFile, storage.IndexFile, storage.SnapshotFile, storage.KeyFile} {
		must(t, be.List(ctx, typ, func(fi storage.FileInfo) error {
			h := storage.Handle{Type: typ, Name: fi.Name}
			refused("delete "+h.String(), be.Remove(ctx, h))
			refused("overwrite "+h.String(), be.Save(ctx, h, []byte("ransom"), storage.SaveOptions{}))
			attempts += 2
			return nil
		}))
	}
	refused("delete config", be.Remove(ctx, storage.Handle{Type: storage.ConfigFile}))
	refused("overwrite config", be.Save(ctx, storage.Handle{Type: storage.ConfigFile}, []byte("x"), storage.SaveOptions{}))
	if attempts < 8 {
		t.Fatalf("only %d attack attempts", attempts)
	}
	// Truncation: raw requests against the repository itself.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
	base := strings.Replace(srv.url, restUser+"@", "", 1) + "/repo"
	for _, m := range []string{http.MethodDelete, http.MethodPut} {
		for _, path := range []string{"", "/", "/packs/", "/index/"} {
			req, err := http.NewRequest(m, base+path, nil)
			must(t, err)
			req.SetBasicAuth(restUser, restPassword)
			resp, err := client.Do(req)
			must(t, err)
			_ = resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("%s %s: %s, want refusal", m, path, resp.Status)
			}
		}
	}
	client.CloseIdleConnections()

	// Backups keep working; forget and prune are refused with an explanation.
	e.backupJSON(0, src)
	for _, args := range [][]string{{"forget", "--keep-last", "1"}, {"prune"}} {
		r := e.run(args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "maintenance credential") {
			t.Errorf("%s on an append-only server: exit %d\n%s", args[0], r.Code, r)
		}
	}
	e.mustRun("check", "--read-data")
	for id, want := range map[string]map[string]string{str(s1["snapshot_id"]): want1, str(s2["snapshot_id"]): want2} {
		out := filepath.Join(t.TempDir(), id[:8])
		e.mustRun("restore", id+":"+src, "--target", out, "--verify")
		assertSameTree(t, want, treeDigest(t, out))
	}

	// With a maintenance server on the same data, forget and prune work.
	srv.stop()
	maint := startREST(t, false, dir)
	m := remoteEnv(t, maint.remote("repo"))
	m.mustRun("forget", "--keep-last", "1", "--prune")
	if n := len(m.snapshots()); n != 1 {
		t.Errorf("%d snapshots after maintenance forget, want 1", n)
	}
}

// insecureTLS accepts the test server's self-signed certificate for raw
// requests (the bunker client pins its fingerprint instead).
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }
