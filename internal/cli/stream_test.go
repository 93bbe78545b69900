package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupStdinFromCommand: a command's output becomes a snapshot only
// when the command succeeds; a failing command leaves no snapshot.
func TestBackupStdinFromCommand(t *testing.T) {
	e := initRepo(t, "--pack-size", "1")

	t.Run("failing command", func(t *testing.T) {
		r := e.run("backup", "--stdin-from-command", "--", "sh", "-c", "echo partial; exit 3")
		requireFailure(t, r)
		if !strings.Contains(r.Stderr, "exit status 3") {
			t.Errorf("error does not report the command's exit status:\n%s", r)
		}
		if n := len(e.snapshots()); n != 0 {
			t.Fatalf("a failing command left %d snapshots", n)
		}
	})

	t.Run("failing command after much output", func(t *testing.T) {
		big := filepath.Join(t.TempDir(), "big")
		writeFile(t, big, randBytes(7, 3<<20))
		r := e.run("backup", "--stdin-from-command", "--", "sh", "-c", "cat "+big+"; echo oops >&2; exit 1")
		requireFailure(t, r)
		if !strings.Contains(r.Stderr, "oops") {
			t.Errorf("error does not carry the command's stderr:\n%s", r)
		}
		if n := len(e.snapshots()); n != 0 {
			t.Fatalf("a failing command left %d snapshots", n)
		}
		e.mustRun("check")
	})

	t.Run("missing command", func(t *testing.T) {
		requireFailure(t, e.run("backup", "--stdin-from-command", "--", "/nonexistent/command"))
		if n := len(e.snapshots()); n != 0 {
			t.Fatalf("a missing command left %d snapshots", n)
		}
	})

	t.Run("succeeding command", func(t *testing.T) {
		data := randBytes(8, 2<<20+777)
		in := filepath.Join(t.TempDir(), "in")
		writeFile(t, in, data)
		sum, _ := e.backupJSON(0, "--stdin-from-command", "--stdin-filename", "dump.sql", "--", "sh", "-c", "echo header; cat "+in)
		if sum["kind"] != "stream" {
			t.Errorf("kind = %v, want stream", sum["kind"])
		}
		want := append([]byte("header\n"), data...)
		id := str(sum["snapshot_id"])
		r := e.mustRun("dump", id, "/dump.sql")
		if !bytes.Equal([]byte(r.Stdout), want) {
			t.Fatalf("dumped stream differs from the command output (%d vs %d bytes)", len(r.Stdout), len(want))
		}
		dst := filepath.Join(t.TempDir(), "dst")
		e.mustRun("restore", id, "--target", dst, "--verify")
		got, err := os.ReadFile(filepath.Join(dst, "dump.sql"))
		must(t, err)
		if !bytes.Equal(got, want) {
			t.Fatalf("restored stream differs from the command output")
		}
		if n := len(e.snapshots()); n != 1 {
			t.Fatalf("want 1 snapshot, have %d", n)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		data := randBytes(9, 1<<20+3)
		r := e.runIn(bytes.NewReader(data), "--json", "backup", "--stdin", "--stdin-filename", "in.bin")
		if r.Code != 0 {
			t.Fatalf("backup --stdin failed:\n%s", r)
		}
		id := str(r.Message(t, "summary")["snapshot_id"])
		out := e.mustRun("dump", id, "in.bin")
		if !bytes.Equal([]byte(out.Stdout), data) {
			t.Fatalf("dump of the stdin snapshot differs")
		}
	})

	t.Run("bad stdin filename", func(t *testing.T) {
		requireFailure(t, e.run("backup", "--stdin", "--stdin-filename", "../x"))
		requireFailure(t, e.run("backup", "--stdin", "/etc"))
	})
	e.mustRun("check", "--read-data")
}
