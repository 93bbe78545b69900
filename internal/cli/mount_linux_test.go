//go:build linux

package cli_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

const (
	mountBigSize   = 16<<20 + 4321 // many blobs: chunks average 1 MiB
	mountManyFiles = 10000
)

// buildMountSource makes nested directories, a symlink, a large file
// and a directory of mountManyFiles small files, with varied modes,
// times and (as root) owners.
func buildMountSource(t *testing.T, src string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(src, "a", "b", "c"), 0o755))
	writeFile(t, filepath.Join(src, "big.bin"), randBytes(71, mountBigSize))
	writeFile(t, filepath.Join(src, "a", "hello.txt"), []byte("hello, mount\n"))
	writeFile(t, filepath.Join(src, "a", "b", "c", "deep.txt"), randBytes(72, 5000))
	writeFile(t, filepath.Join(src, "a", "b", "script.sh"), []byte("#!/bin/sh\necho hi\n"))
	writeFile(t, filepath.Join(src, "a", "b", "secret"), []byte("s3cret\n"))
	writeFile(t, filepath.Join(src, "empty"), nil)
	must(t, os.Chmod(filepath.Join(src, "a", "b", "script.sh"), 0o755))
	must(t, os.Chmod(filepath.Join(src, "a", "b", "secret"), 0o600))
	must(t, os.Chmod(filepath.Join(src, "a", "b", "c"), 0o750))
	must(t, os.Symlink("a/b/c/deep.txt", filepath.Join(src, "link")))
	must(t, os.Symlink("/nonexistent/target", filepath.Join(src, "a", "dangling")))
	many := filepath.Join(src, "many")
	must(t, os.Mkdir(many, 0o755))
	for i := 0; i < mountManyFiles; i++ {
		writeFile(t, filepath.Join(many, fmt.Sprintf("f%05d", i)), []byte(fmt.Sprintf("small file %d\n", i)))
	}
	mt := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	must(t, os.Chtimes(filepath.Join(src, "a", "hello.txt"), mt, mt))
	if isRoot() {
		must(t, os.Lchown(filepath.Join(src, "a", "b", "secret"), 1234, 5678))
		must(t, os.Lchown(filepath.Join(src, "link"), 4321, 8765))
	}
}

// mounted reports whether dir is a mountpoint in /proc/self/mounts.
func mounted(t *testing.T, dir string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	must(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}

// compareMounted compares every entry below src with its counterpart
// below got: type, permission bits, size, mtime, owner, symlink target
// and file bytes.
func compareMounted(t *testing.T, src, got string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(got, rel)
		want, err := os.Lstat(p)
		if err != nil {
			return err
		}
		have, err := os.Lstat(q)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		n++
		if want.Mode() != have.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, have.Mode(), want.Mode())
		}
		if rel == "." {
			return nil // the snapshot's copy of the root
		}
		ws, hs := want.Sys().(*syscall.Stat_t), have.Sys().(*syscall.Stat_t)
		if ws.Uid != hs.Uid || ws.Gid != hs.Gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, hs.Uid, hs.Gid, ws.Uid, ws.Gid)
		}
		if !want.IsDir() && !want.ModTime().Equal(have.ModTime()) {
			t.Errorf("%s: mtime %v, want %v", rel, have.ModTime(), want.ModTime())
		}
		switch {
		case want.Mode()&fs.ModeSymlink != 0:
			wl, _ := os.Readlink(p)
			hl, err := os.Readlink(q)
			if err != nil || wl != hl {
				t.Errorf("%s: link to %q (%v), want %q", rel, hl, err, wl)
			}
		case want.Mode().IsRegular():
			if want.Size() != have.Size() {
				t.Errorf("%s: size %d, want %d", rel, have.Size(), want.Size())
			}
			wb, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			hb, err := os.ReadFile(q)
			if err != nil {
				t.Errorf("%s: %v", rel, err)
			} else if !bytes.Equal(wb, hb) {
				t.Errorf("%s: content differs (%d bytes, want %d)", rel, len(hb), len(wb))
			}
		}
		return nil
	})
	must(t, err)
	if n < mountManyFiles {
		t.Errorf("compared only %d entries", n)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestMountBrowsesSnapshots(t *testing.T) {
	testsrv.FUSE(t)
	root := t.TempDir()
	src := filepath.Join(root, "src")
	buildMountSource(t, src)
	e := initRepo(t)
	e.mustRun("backup", "--host", "hostA", "--tag", "t1", src)
	e.mustRun("backup", "--host", "hostB", "--tag", "t1", "--tag", "t2", src)

	// The names the mount must show: by time, then ID; a time already
	// taken gets "-1".
	type snap struct {
		id, short string
		time      time.Time
	}
	var snaps []snap
	for _, m := range e.snapshots() {
		tm, err := time.Parse(time.RFC3339Nano, testutil.Str(m["time"]))
		must(t, err)
		snaps = append(snaps, snap{testutil.Str(m["id"]), testutil.Str(m["short_id"]), tm})
	}
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots, want 2", len(snaps))
	}
	sort.Slice(snaps, func(i, j int) bool {
		if !snaps[i].time.Equal(snaps[j].time) {
			return snaps[i].time.Before(snaps[j].time)
		}
		return snaps[i].id < snaps[j].id
	})
	names := []string{snaps[0].time.Format(time.RFC3339), snaps[1].time.Format(time.RFC3339)}
	if names[1] == names[0] {
		names[1] += "-1"
	}

	mnt := filepath.Join(root, "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer // read only after done
	done := make(chan int, 1)
	go func() {
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: e.getenv}
		done <- app.Run(ctx, []string{"-r", e.repo, "mount", mnt})
	}()
	t.Cleanup(func() {
		if mounted(t, mnt) { // a failed test: do not leave the mount behind
			_ = exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
	})
	for !mounted(t, mnt) {
		select {
		case code := <-done:
			t.Fatalf("mount exited with %d before mounting:\n%s%s", code, stdout.String(), stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}

	// The layout.
	if got, want := dirNames(t, mnt), []string{"hosts", "ids", "latest", "snapshots", "tags"}; !slices.Equal(got, want) {
		t.Errorf("mount root holds %q, want %q", got, want)
	}
	if got := dirNames(t, filepath.Join(mnt, "snapshots")); !slices.Equal(got, names) {
		t.Errorf("snapshots/ holds %q, want %q", got, names)
	}
	shorts := []string{snaps[0].short, snaps[1].short}
	slices.Sort(shorts)
	if got := dirNames(t, filepath.Join(mnt, "ids")); !slices.Equal(got, shorts) {
		t.Errorf("ids/ holds %q, want %q", got, shorts)
	}
	if got := dirNames(t, filepath.Join(mnt, "hosts")); !slices.Equal(got, []string{"hostA", "hostB"}) {
		t.Errorf("hosts/ holds %q", got)
	}
	if got := dirNames(t, filepath.Join(mnt, "hosts", "hostB")); !slices.Equal(got, names[1:]) {
		t.Errorf("hosts/hostB/ holds %q, want %q", got, names[1:])
	}
	if got := dirNames(t, filepath.Join(mnt, "tags", "t1")); !slices.Equal(got, names) {
		t.Errorf("tags/t1/ holds %q, want %q", got, names)
	}
	if got := dirNames(t, filepath.Join(mnt, "tags", "t2")); !slices.Equal(got, names[1:]) {
		t.Errorf("tags/t2/ holds %q, want %q", got, names[1:])
	}
	if target, err := os.Readlink(filepath.Join(mnt, "latest")); err != nil || target != "snapshots/"+names[1] {
		t.Errorf("latest links to %q (%v), want snapshots/%s", target, err, names[1])
	}

	// The snapshot holds src under its absolute path.
	snapSrc := filepath.Join(mnt, "snapshots", names[1], src)
	many := filepath.Join(snapSrc, "many")
	start := time.Now()
	entries, err := os.ReadDir(many)
	el := time.Since(start)
	must(t, err)
	if len(entries) != mountManyFiles {
		t.Errorf("many/ lists %d entries, want %d", len(entries), mountManyFiles)
	}
	t.Logf("listing %d files (cold, readdir only): %v", len(entries), el)
	start = time.Now()
	for _, de := range entries {
		if _, err := de.Info(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("lstat of %d files: %v", len(entries), time.Since(start))

	// A range in the middle of the large file, then all of it.
	want, err := os.ReadFile(filepath.Join(src, "big.bin"))
	must(t, err)
	f, err := os.Open(filepath.Join(snapSrc, "big.bin"))
	must(t, err)
	off, n := int64(mountBigSize/2-77777), 3<<20+99
	part := make([]byte, n)
	if _, err := f.ReadAt(part, off); err != nil {
		t.Errorf("read %d bytes at %d: %v", n, off, err)
	} else if !bytes.Equal(part, want[off:off+int64(n)]) {
		t.Errorf("bytes %d..%d of big.bin differ", off, off+int64(n))
	}
	must(t, f.Close())
	start = time.Now()
	all, err := os.ReadFile(filepath.Join(mnt, "latest", src, "big.bin"))
	el = time.Since(start)
	must(t, err)
	if !bytes.Equal(all, want) {
		t.Errorf("big.bin through latest differs")
	}
	t.Logf("read big.bin (%d bytes): %v, %.1f MiB/s", len(all), el, float64(len(all))/(1<<20)/el.Seconds())

	// Every entry, bit-exact, with its metadata; the older snapshot by ID.
	compareMounted(t, src, snapSrc)
	assertSameTree(t, testutil.TreeDigest(t, src), testutil.TreeDigest(t, filepath.Join(mnt, "ids", snaps[0].short, src)))

	// Writes are refused.
	isRO := func(err error) bool {
		return errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES)
	}
	if err := os.WriteFile(filepath.Join(snapSrc, "new.txt"), []byte("x"), 0o644); !isRO(err) {
		t.Errorf("creating a file: %v, want EROFS", err)
	}
	if _, err := os.OpenFile(filepath.Join(snapSrc, "a", "hello.txt"), os.O_WRONLY, 0); !isRO(err) {
		t.Errorf("opening a file for writing: %v, want EROFS", err)
	}
	if err := os.Mkdir(filepath.Join(mnt, "snapshots", "x"), 0o755); !isRO(err) {
		t.Errorf("mkdir: %v, want EROFS", err)
	}
	if err := os.Remove(filepath.Join(snapSrc, "empty")); !isRO(err) {
		t.Errorf("remove: %v, want EROFS", err)
	}

	// Cancelling unmounts.
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("mount exited with %d:\n%s%s", code, stdout.String(), stderr.String())
	}
	if mounted(t, mnt) {
		t.Errorf("%s is still mounted after the context was cancelled", mnt)
	}
	if !strings.Contains(stdout.String(), "mounted 2 snapshots at "+mnt) || !strings.Contains(stdout.String(), "unmounted "+mnt) {
		t.Errorf("output:\n%s%s", stdout.String(), stderr.String())
	}
}

func TestMountRefusesBadMountpoints(t *testing.T) {
	e := initRepo(t)
	root := t.TempDir()
	missing := filepath.Join(root, "missing")
	r := e.expect(1, "mount", missing)
	if !strings.Contains(r.Stderr, missing) || !strings.Contains(r.Stderr, "does not exist") {
		t.Errorf("missing mountpoint:\n%s", r)
	}
	full := filepath.Join(root, "full")
	writeFile(t, filepath.Join(full, "x"), []byte("x"))
	r = e.expect(1, "mount", full)
	if !strings.Contains(r.Stderr, full) || !strings.Contains(r.Stderr, "not empty") {
		t.Errorf("non-empty mountpoint:\n%s", r)
	}
	file := filepath.Join(full, "x")
	r = e.expect(1, "mount", file)
	if !strings.Contains(r.Stderr, file) || !strings.Contains(r.Stderr, "not a directory") {
		t.Errorf("file as mountpoint:\n%s", r)
	}
}

// TestJSONSchemaMount: mount --json prints its mounted and unmounted
// lines as docs/JSON.md lists them.
func TestJSONSchemaMount(t *testing.T) {
	testsrv.FUSE(t)
	e := initRepo(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a.txt"), []byte("alpha"))
	e.mustRun("backup", src)
	mnt := filepath.Join(t.TempDir(), "mnt")
	must(t, os.Mkdir(mnt, 0o755))
	t.Cleanup(func() {
		if mounted(t, mnt) {
			_ = exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
	})
	r := runService(t, e.getenv, []string{"-r", e.repo, "mount", mnt}, func(stdout, _ string) bool {
		return strings.Contains(stdout, `"message_type":"mounted"`)
	})
	if r.Code != 0 || !strings.Contains(r.Stdout, `"message_type":"unmounted"`) {
		t.Errorf("mount --json:\n%s", r)
	}
}
