package app_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// archivedWAL lists the WAL files of the repository's archive snapshots,
// each name once.
func archivedWAL(t *testing.T, a *app.App, repo app.Repo) (names []string, snaps int) {
	t.Helper()
	for _, f := range postgres.ListArchive(app.SnapshotInfos(snapshots(t, a, repo)), "42") {
		if !slices.Contains(names, f.Name) {
			names = append(names, f.Name)
		}
	}
	for _, s := range snapshots(t, a, repo) {
		if s.Kind == app.KindContinuous {
			snaps++
		}
	}
	return names, snaps
}

func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, _, err := (&postgres.WALSpool{Dir: dir}).List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		out = append(out, f.WAL.Name)
	}
	return out
}

// TestSpoolWAL: wal-push --spool archives the whole spool itself when no
// pusher holds the spool's lock, only spools (reaching neither storage
// nor password) while one does, and archives again once the spool is
// over its bound.
func TestSpoolWAL(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock: wal-push always archives")
	}
	ctx := context.Background()
	a := &app.App{}
	repo := newRepo(t)
	src, spool := t.TempDir(), filepath.Join(t.TempDir(), "spool")
	seg := func(n int) string {
		name := postgres.SegmentName(1, uint64(n)<<24, 0)
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(strings.Repeat(name, 100)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	push := func(max int, repoUsed *bool, paths ...string) *app.WALSpoolPushResult {
		t.Helper()
		res, err := a.SpoolWAL(ctx, app.WALSpoolPush{Spool: spool, Paths: paths, SystemID: "42", MaxFiles: max,
			OpenRepo: func(context.Context) (app.Repo, error) { *repoUsed = true; return repo, nil }})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	var used bool
	res := push(0, &used, seg(1), seg(2))
	if !used || res.Reason == "" || res.Archived != 2 || len(res.Snapshots) != 1 || !slices.Equal(res.Spooled, []string{"42-000000010000000000000001", "42-000000010000000000000002"}) {
		t.Errorf("without a pusher: repository used %v, %+v", used, res)
	}
	if names, snaps := archivedWAL(t, a, repo); len(names) != 2 || snaps != 1 {
		t.Errorf("archived %v in %d snapshots", names, snaps)
	}
	if left := spoolFiles(t, spool); len(left) != 0 {
		t.Errorf("left in the spool: %v", left)
	}

	// A pusher holds the lock.
	unlock, ok, err := (&postgres.WALSpool{Dir: spool}).TryLock()
	if err != nil || !ok {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	used = false
	for i := 3; i <= 5; i++ {
		if res := push(3, &used, seg(i)); res.Reason != "" || res.Archived != 0 {
			t.Errorf("segment %d with a pusher: %+v", i, res)
		}
	}
	if used {
		t.Error("wal-push reached the repository while a pusher runs and the spool is within its bound")
	}
	if left := spoolFiles(t, spool); len(left) != 3 {
		t.Errorf("spooled %v", left)
	}
	// Over the bound: this push archives the four waiting files itself.
	res = push(3, &used, seg(6))
	if !used || !strings.Contains(res.Reason, "over its bound") || res.Archived != 4 {
		t.Errorf("over the bound: %+v", res)
	}
	// A slow pusher meanwhile: two more wait for it.
	push(3, &used, seg(7), seg(8))
	unlock()

	// The pusher drains the spool, one file per snapshot.
	out, err := a.RunWALSpooler(ctx, app.WALSpooler{Repo: repo, Spool: spool, Batch: 1, Once: true})
	if err != nil || out.Archived != 2 || out.Snapshots != 2 {
		t.Fatalf("pusher --once: %+v %v", out, err)
	}
	names, snaps := archivedWAL(t, a, repo)
	if len(names) != 8 || snaps != 4 {
		t.Errorf("archived %v in %d snapshots", names, snaps)
	}
	st, err := a.WALSpoolStatus(spool)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 0 || st.PusherRunning || st.Pusher == nil || st.Pusher.Pushed != 2 || st.Pusher.LastPushFiles != 1 || st.Pusher.PID != os.Getpid() {
		t.Errorf("spool status after the pusher: %+v %+v", st, st.Pusher)
	}
}

// TestWALSpooler: a running pusher archives what arrives in the spool
// while wal-push returns at once, and stops cleanly when its context
// ends, leaving nothing behind but its lock and state files.
func TestWALSpooler(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
	a := &app.App{}
	repo := newRepo(t)
	src, spool := t.TempDir(), filepath.Join(t.TempDir(), "spool")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := a.RunWALSpooler(ctx, app.WALSpooler{Repo: repo, Spool: spool, Poll: 10 * time.Millisecond})
		done <- err
	}()
	// Wait until the pusher holds the lock.
	for {
		st, err := a.WALSpoolStatus(spool)
		if err == nil && st.PusherRunning {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := 1; i <= 5; i++ {
		name := postgres.SegmentName(1, uint64(i)<<24, 0)
		p := filepath.Join(src, name)
		if err := os.WriteFile(p, []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := a.SpoolWAL(ctx, app.WALSpoolPush{Spool: spool, Paths: []string{p}, SystemID: "42",
			OpenRepo: func(context.Context) (app.Repo, error) { t.Error("wal-push opened the repository"); return repo, nil }})
		if err != nil || res.Reason != "" {
			t.Fatalf("spool %s: %+v %v", name, res, err)
		}
	}
	for {
		if names, _ := archivedWAL(t, a, repo); len(names) == 5 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("pusher: %v", err)
	}
	// The pusher removed each batch's files after its commit, before
	// it looked at its context again.
	if left := spoolFiles(t, spool); len(left) != 0 {
		t.Errorf("left in the spool: %v", left)
	}
	ents, _ := os.ReadDir(spool)
	for _, e := range ents {
		if e.Name() != "pusher.lock" && e.Name() != "pusher.json" {
			t.Errorf("left in the spool: %s", e.Name())
		}
	}
}
