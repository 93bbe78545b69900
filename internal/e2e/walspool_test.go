//go:build unix

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// writeSegment writes a WAL segment file of the cluster sysid: a long
// page header (so wal-push reads the system identifier from it) then
// pseudo-random bytes.
func writeSegment(t *testing.T, path string, sysid, seed uint64, size int64) {
	t.Helper()
	writeRandomFile(t, path, seed, size)
	h := testutil.WALSegmentHeader(sysid)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt(h, 0)
	must(t, err)
	must(t, f.Close())
}

// holdSpoolLock takes the spool's lock as a pusher would, so that wal-push
// --spool only spools; the returned func releases it.
func holdSpoolLock(t *testing.T, spool string) func() {
	t.Helper()
	must(t, os.MkdirAll(spool, 0o700))
	f, err := os.OpenFile(filepath.Join(spool, "pusher.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	must(t, err)
	must(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	return func() { f.Close() }
}

// spooled lists the WAL names waiting in the spool.
func spooled(t *testing.T, spool string) []string {
	t.Helper()
	ents, err := os.ReadDir(spool)
	must(t, err)
	var out []string
	for _, e := range ents {
		if _, name, ok := strings.Cut(e.Name(), "-"); ok && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, name)
		}
	}
	return out
}

// archivedNames lists the WAL files in the repository's archive.
func (r *repo) archivedNames() []string {
	r.t.Helper()
	var wal []struct{ Name string }
	testutil.DecodeMessages(r.t, r.mustRun("--json", "pg", "wal-list").Stdout, "wal", &wal)
	var out []string
	for _, w := range wal {
		out = append(out, w.Name)
	}
	return out
}

// TestWALSpoolKill9 is issue 17's crash test of asynchronous WAL
// archiving: segments are spooled by wal-push --spool, and the pusher
// (pg wal-spool, the real binary) is killed with SIGKILL at random
// moments while it archives them, again and again; a wal-push is killed
// while it spools, and retried as PostgreSQL would. After every kill,
// each segment wal-push accepted is in the spool or in the repository;
// at the end, after one more pusher run, every segment is fetched
// bit-exactly by wal-fetch, pg info shows a continuous archive without a
// gap, the spool is empty and the repository checks clean.
func TestWALSpoolKill9(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 17))
	const sysid = 7312345678901234567
	const perTrial, trials, segSize = 6, 8, 2 << 20
	r := initRepo(t, "--pack-size", "1")
	src, spool := t.TempDir(), filepath.Join(t.TempDir(), "spool")
	var accepted []string
	segment := func(n int) string {
		name := segmentName(n)
		writeSegment(t, filepath.Join(src, name), sysid, seed+uint64(n), segSize)
		return name
	}
	push := func(name string) {
		t.Helper()
		r.mustRun("pg", "wal-push", "--spool", spool, filepath.Join(src, name))
		accepted = append(accepted, name)
	}
	noneLost := func(when string) {
		t.Helper()
		have := append(spooled(t, spool), r.archivedNames()...)
		for _, name := range accepted {
			if !slices.Contains(have, name) {
				t.Fatalf("%s: segment %s, accepted by wal-push, is neither in the spool nor in the repository", when, name)
			}
		}
	}

	// Calibrate: how long the pusher takes for one trial's segments.
	release := holdSpoolLock(t, spool)
	n := 0
	for i := 0; i < perTrial; i++ {
		n++
		push(segment(n))
	}
	release()
	calib := r.mustRun("pg", "wal-spool", "--once", "--batch", "2", spool).Dur
	t.Logf("the pusher archives %d segments of %s in %v", perTrial, mib(segSize), calib.Round(time.Millisecond))
	noneLost("after calibration")

	midBatch := 0
	for trial := 1; trial <= trials; trial++ {
		release := holdSpoolLock(t, spool)
		for i := 0; i < perTrial; i++ {
			n++
			push(segment(n))
		}
		if trial == trials/2 {
			// A wal-push killed while it spools leaves at most a
			// temporary file; PostgreSQL retries it.
			n++
			name := segment(n)
			killed, code := r.runKilled(time.Duration(1+rng.IntN(20))*time.Millisecond, "pg", "wal-push", "--spool", spool, filepath.Join(src, name))
			t.Logf("trial %d: wal-push of %s killed=%v (code %d)", trial, name, killed, code)
			push(name)
		}
		release()
		// Let the pusher archive a random number of segments first, then
		// kill it a random moment later: mostly in the middle of a batch.
		before := len(spooled(t, spool))
		target := before - rng.IntN(perTrial)
		cmd := r.command(t.Context(), "pg", "wal-spool", "--batch", "2", "--poll", "20ms", spool)
		must(t, cmd.Start())
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.Now().Add(5 * time.Minute) // a hang guard, not a timing assertion
		for len(spooled(t, spool)) > target && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		delay := time.Duration(rng.Float64() * float64(calib) / perTrial)
		time.Sleep(delay)
		select {
		case err := <-exited:
			t.Fatalf("trial %d: the pusher exited by itself: %v", trial, err)
		default:
		}
		must(t, cmd.Process.Signal(syscall.SIGKILL))
		<-exited
		waiting := spooled(t, spool)
		if len(waiting) > 0 {
			midBatch++
		}
		t.Logf("trial %d: pusher killed %v after the spool went from %d to %d segments; %d left", trial, delay.Round(time.Millisecond), before, target, len(waiting))
		noneLost(fmt.Sprintf("trial %d, after the kill", trial))
	}
	t.Logf("%d of %d kills left segments in the spool", midBatch, trials)

	// One more push with a pusher that is not running archives the whole
	// spool itself.
	n++
	push(segment(n))
	if left := spooled(t, spool); len(left) != 0 {
		t.Errorf("wal-push without a pusher left %v in the spool", left)
	}
	ageLeftovers(t, r.dir)
	if res := r.run("check", "--read-data"); res.Code != 0 {
		t.Fatalf("check after the kills:\n%s", res)
	}
	archived := r.archivedNames()
	dest := filepath.Join(t.TempDir(), "fetched")
	for _, name := range accepted {
		if !slices.Contains(archived, name) {
			t.Errorf("segment %s is not in the repository", name)
			continue
		}
		r.mustRun("pg", "wal-fetch", "--system-id", fmt.Sprint(sysid), name, dest)
		got, err := os.ReadFile(dest)
		must(t, err)
		want, err := os.ReadFile(filepath.Join(src, name))
		must(t, err)
		if !bytes.Equal(got, want) {
			t.Errorf("wal-fetch %s: %d bytes differ from the %d pushed", name, len(got), len(want))
		}
	}
	var info struct {
		WAL struct {
			First, Last string
			Segments    int
			Continuous  bool
		} `json:"wal"`
	}
	b, err := json.Marshal(r.mustRun("--json", "pg", "info").Message(t, "pg_info"))
	must(t, err)
	must(t, json.Unmarshal(b, &info))
	if !info.WAL.Continuous || info.WAL.Segments != n || info.WAL.First != segmentName(1) || info.WAL.Last != segmentName(n) {
		t.Errorf("pg info after the kills: %+v, want %d continuous segments", info.WAL, n)
	}
	st := r.mustRun("--json", "pg", "info", "--spool", spool).Message(t, "pg_wal_spool")
	if st["files"] != 0.0 || st["pusher_running"] != false {
		t.Errorf("spool state at the end: %v", st)
	}
}

// segmentName is the name of the n-th segment of timeline 1.
func segmentName(n int) string { return fmt.Sprintf("%08X%08X%08X", 1, 0, n) }
