package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

func writeWAL(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWALSpool: files are spooled under SYSID-WALNAME, listed oldest
// first, archived by their WAL names, and removed only when they are
// still the files archived; a file gone since it was listed is left out
// of a batch.
func TestWALSpool(t *testing.T) {
	src := t.TempDir()
	sp, err := OpenWALSpool(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	seg := append(testutil.WALSegmentHeader(42), bytes.Repeat([]byte{7}, 1000)...)
	paths := []string{
		writeWAL(t, src, "000000010000000000000003", seg),
		writeWAL(t, src, "000000010000000000000002", seg),
		writeWAL(t, src, "00000002.history", []byte("1\t0/3000000\tno recovery target specified\n")),
	}
	added, err := sp.Add(paths, "42")
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 3 || added[0].Name != "42-000000010000000000000003" || added[0].Size != int64(len(seg)) {
		t.Fatalf("added %+v", added)
	}
	if _, err := sp.Add([]string{writeWAL(t, src, "other", nil)}, "42"); err == nil || !strings.Contains(err.Error(), "not a WAL file name") {
		t.Errorf("spooling a file that is not WAL: %v", err)
	}
	// Noise: a temporary file, a stray file, the lock.
	writeWAL(t, sp.Dir, spoolTempPrefix+"42-000000010000000000000009", nil)
	writeWAL(t, sp.Dir, "README", nil)
	unlock, ok, err := sp.TryLock()
	if err != nil || !ok {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	files, temps, err := sp.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.WAL.Name)
	}
	if want := []string{"000000010000000000000002", "000000010000000000000003", "00000002.history"}; !reflect.DeepEqual(names, want) || temps != 1 {
		t.Fatalf("listed %v (%d temporary), want %v", names, temps, want)
	}
	st, err := sp.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 3 || st.Bytes != 2*int64(len(seg))+files[2].Size || st.Oldest != "000000010000000000000002" ||
		!reflect.DeepEqual(st.Systems, []string{"42"}) || st.Temporary != 1 || st.Pusher != nil {
		t.Errorf("status %+v", st)
	}
	if runtime.GOOS != "windows" && !st.PusherRunning {
		t.Errorf("status says no pusher while the lock is held")
	}
	if !st.Over(2, 0) || st.Over(3, 0) || !st.Over(0, st.Bytes-1) || st.Over(0, st.Bytes) {
		t.Errorf("bounds of %+v", st)
	}
	unlock()

	// One file goes (archived by someone else) after the listing.
	if err := os.Remove(filepath.Join(sp.Dir, files[2].Name)); err != nil {
		t.Fatal(err)
	}
	b, err := sp.OpenBatch(files)
	if err != nil {
		t.Fatal(err)
	}
	sink := newMemSink()
	m, err := b.Archive(context.Background(), sink)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if len(b.Files) != 2 || m.SystemIdentifier != "42" || m.WALFirst != "000000010000000000000002" || m.WALLast != "000000010000000000000003" ||
		!bytes.Equal(sink.files["wal/000000010000000000000002"], seg) || len(sink.files) != 2 {
		t.Errorf("archived %+v, files %d", m, len(sink.files))
	}
	// Segment 3 is spooled again meanwhile: that copy stays.
	if _, err := sp.Add(paths[:1], "42"); err != nil {
		t.Fatal(err)
	}
	if err := sp.Remove(b); err != nil {
		t.Fatal(err)
	}
	files, _, _ = sp.List()
	if len(files) != 1 || files[0].WAL.Name != "000000010000000000000003" {
		t.Errorf("after removing the batch: %+v", files)
	}

	if _, err := sp.OpenBatch([]SpooledWAL{{Name: "1-000000010000000000000001", System: "1"}, {Name: "2-000000010000000000000001", System: "2"}}); err == nil {
		t.Error("a batch of two systems was opened")
	}
}

func TestWALSpoolLock(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
	sp, err := OpenWALSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if busy, err := sp.locked(); err != nil || busy {
		t.Fatalf("locked before any lock: %v %v", busy, err)
	}
	unlock, ok, err := sp.TryLock()
	if err != nil || !ok {
		t.Fatalf("TryLock: %v %v", ok, err)
	}
	if _, ok, err := sp.TryLock(); err != nil || ok {
		t.Fatalf("a second TryLock: %v %v", ok, err)
	}
	if busy, _ := sp.locked(); !busy {
		t.Error("locked() does not see the lock")
	}
	unlock()
	if busy, _ := sp.locked(); busy {
		t.Error("locked() after unlock")
	}
	unlock, ok, err = sp.TryLock()
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock: %v %v", ok, err)
	}
	unlock()
}

func TestWALSpoolStaleTemps(t *testing.T) {
	sp, err := OpenWALSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	old := writeWAL(t, sp.Dir, spoolTempPrefix+"42-000000010000000000000001", nil)
	fresh := writeWAL(t, sp.Dir, spoolTempPrefix+"42-000000010000000000000002", nil)
	long := time.Now().Add(-2 * SpoolTempMaxAge)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	n, err := sp.RemoveStaleTemps(time.Now())
	if err != nil || n != 1 {
		t.Fatalf("removed %d: %v", n, err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Error("the stale temporary file is still there")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("a fresh temporary file was removed")
	}
}

func TestWALSpoolState(t *testing.T) {
	sp, err := OpenWALSpool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	in := SpoolState{PID: 12, Hostname: "db1", Started: now, LastPush: now, LastPushFiles: 3, LastSnapshot: "abcd", Pushed: 9,
		LastError: strings.Repeat("é", 3000), LastErrorTime: now}
	if err := sp.WriteState(in); err != nil {
		t.Fatal(err)
	}
	st, err := sp.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pusher == nil || st.Pusher.PID != 12 || st.Pusher.Pushed != 9 || len(st.Pusher.LastError) > 4096 || !st.Pusher.LastPush.Equal(now) {
		t.Fatalf("state read back: %+v (%s)", st.Pusher, st.StateError)
	}
	writeWAL(t, sp.Dir, spoolStateName, []byte(`{"pid":-1}`))
	if st, _ := sp.Status(); st.Pusher != nil || !strings.Contains(st.StateError, "negative pid") {
		t.Errorf("a bad state: %+v", st)
	}
}

func TestParseSpoolName(t *testing.T) {
	for _, tc := range []struct {
		name, sysid, wal string
	}{
		{"7312345678901234567-000000010000000000000003", "7312345678901234567", "000000010000000000000003"},
		{"42-00000002.history", "42", "00000002.history"},
		{"42-000000010000000000000003.partial", "42", "000000010000000000000003.partial"},
		{"42-000000010000000000000002.00000028.backup", "42", "000000010000000000000002.00000028.backup"},
		{"042-000000010000000000000003", "", ""},
		{"0-000000010000000000000003", "", ""},
		{"-000000010000000000000003", "", ""},
		{"+42-000000010000000000000003", "", ""},
		{"18446744073709551616-000000010000000000000003", "", ""},
		{"42-000000000000000000000003", "", ""},
		{"42_000000010000000000000003", "", ""},
		{"42-000000010000000000000003-x", "", ""},
		{".tmp-42-000000010000000000000003", "", ""},
		{"pusher.json", "", ""},
	} {
		sysid, w, err := ParseSpoolName(tc.name)
		if tc.sysid == "" {
			if err == nil {
				t.Errorf("%q parsed: %s %+v", tc.name, sysid, w)
			}
			continue
		}
		if err != nil || sysid != tc.sysid || w.Name != tc.wal {
			t.Errorf("%q: %s %+v %v", tc.name, sysid, w, err)
		}
	}
}

func FuzzParseSpoolName(f *testing.F) {
	f.Add("7312345678901234567-000000010000000000000003")
	f.Add("42-00000002.history")
	f.Add("1-000000010000000000000002.00000028.backup")
	f.Add("042-x")
	f.Fuzz(func(t *testing.T, s string) {
		sysid, w, err := ParseSpoolName(s)
		if err != nil {
			return
		}
		if SpoolName(sysid, w.Name) != s || strings.ContainsAny(s, "/\\") || strings.HasPrefix(s, spoolTempPrefix) || s == spoolStateName || s == spoolLockName {
			t.Fatalf("%q: %s %+v", s, sysid, w)
		}
	})
}

func FuzzParseSpoolState(f *testing.F) {
	f.Add([]byte(`{"pid":12,"hostname":"db1","started":"2026-12-07T12:00:00Z","pushed":3,"last_error":"x"}`))
	f.Add([]byte(`{"pid":-1}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"started":"not a time"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseSpoolState(b)
		if err != nil {
			return
		}
		if err := st.Validate(); err != nil {
			t.Fatalf("parsed an invalid state %+v: %v", st, err)
		}
		// What parses survives a round trip.
		out, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseSpoolState(out)
		if err != nil || again.PID != st.PID || again.Pushed != st.Pushed || again.LastError != st.LastError || !again.Started.Equal(st.Started) {
			t.Fatalf("round trip of %+v: %+v, %v", st, again, err)
		}
	})
}
