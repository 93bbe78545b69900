package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/minio/minio-go/v7"
)

// TestStorageAttackerSeedsObjectLockedS3 is the storage administrator (or
// a stolen storage credential without the repository key) doing its worst
// to an object-locked, versioned bucket, differently for every seed:
// plain deletes of any object, overwrites with junk or with the bytes of
// another object (replays), deletes of locked versions, junk objects of its
// own. Locked versions survive; rolling the repository back to before the
// attack makes every snapshot restore bit-exactly and check --read-data
// clean, and backups go on (docs/SECURITY.md, "storage administrator").
func TestStorageAttackerSeedsObjectLockedS3(t *testing.T) {
	s := testsrv.SeaweedFS(t)
	c := minioClient(t, s)
	ctx := context.Background()
	seeds := 6
	if testing.Short() {
		seeds = 1
	}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 77))
			e, bucket := lockedS3(t, s)
			e.mustRun("--insecure-kdf-for-tests", "init", "--pack-size", "1", "--object-lock", "compliance", "--retention", "1d")
			src := filepath.Join(t.TempDir(), "src")
			snaps := map[string]map[string]string{}
			for b := 0; b < 2+rng.IntN(2); b++ {
				writeFile(t, filepath.Join(src, fmt.Sprintf("f%d.bin", b)), randBytes(uint64(1000*seed+b), 200<<10+rng.IntN(900<<10)))
				writeFile(t, filepath.Join(src, "notes.txt"), []byte(fmt.Sprintf("backup %d", b)))
				sum, _ := e.backupJSON(0, src)
				snaps[str(sum["snapshot_id"])] = treeDigest(t, src)
			}
			time.Sleep(1100 * time.Millisecond)
			goodTime := time.Now().UTC()
			time.Sleep(1100 * time.Millisecond)

			keys := keysUnder(t, c, bucket, "repo/")
			var bodies [][]byte
			for _, key := range keys {
				obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
				must(t, err)
				var buf bytes.Buffer
				_, err = buf.ReadFrom(obj)
				must(t, err)
				bodies = append(bodies, buf.Bytes())
			}
			moves := map[string]int{}
			for _, key := range keys {
				switch rng.IntN(5) {
				case 0: // delete the locked version itself: must be refused
					info, err := c.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
					must(t, err)
					if err := c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID}); err == nil {
						t.Fatalf("the attacker deleted the locked version of %s", key)
					}
					moves["version delete refused"]++
				case 1: // a plain delete: a delete marker
					must(t, c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}))
					moves["delete"]++
				case 2: // overwrite with junk
					junk := randBytes(rng.Uint64(), 1+rng.IntN(4096))
					_, err := c.PutObject(ctx, bucket, key, bytes.NewReader(junk), int64(len(junk)), minio.PutObjectOptions{})
					must(t, err)
					moves["overwrite"]++
				case 3: // replay another object's bytes under this name
					b := bodies[rng.IntN(len(bodies))]
					_, err := c.PutObject(ctx, bucket, key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{})
					must(t, err)
					moves["replay"]++
				}
			}
			for i := 0; i < 1+rng.IntN(3); i++ {
				dir := []string{"snapshots", "index", "packs/00", "keys", "maint"}[rng.IntN(5)]
				junk := randBytes(rng.Uint64(), 64)
				_, err := c.PutObject(ctx, bucket, fmt.Sprintf("repo/%s/%064x", dir, rng.Uint64()), bytes.NewReader(junk), 64, minio.PutObjectOptions{})
				must(t, err)
				moves["plant"]++
			}
			t.Logf("attacker moves %v", moves)

			e.mustRun("repair", "rollback", "--to", goodTime.Format(time.RFC3339Nano))
			e.mustRun("check", "--read-data")
			if n := len(e.snapshots()); n != len(snaps) {
				t.Fatalf("%d snapshots after rollback, want %d", n, len(snaps))
			}
			for id, want := range snaps {
				out := filepath.Join(t.TempDir(), "restore-"+id[:8])
				e.mustRun("restore", id+":"+src, "--target", out, "--verify")
				assertSameTree(t, want, treeDigest(t, out))
			}
			writeFile(t, filepath.Join(src, "after.txt"), []byte("after the attack"))
			e.backupJSON(0, src)
			e.mustRun("check")
		})
	}
}
