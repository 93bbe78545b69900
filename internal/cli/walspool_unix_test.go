//go:build unix

package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestPGWALPushSpool: wal-push --spool without a pusher archives the
// spool itself; with the spool's lock held (a pusher runs) it only
// spools, and pg info --spool shows what waits; pg wal-spool --once
// archives it; wal-fetch reads the repository only, so a segment is
// fetchable once archived, not while it only waits in the spool.
func TestPGWALPushSpool(t *testing.T) {
	e := initRepo(t)
	src, spool := t.TempDir(), filepath.Join(t.TempDir(), "spool")
	seg := func(name string) string {
		p := filepath.Join(src, name)
		writeFile(t, p, []byte("WAL "+name))
		return p
	}
	res := e.mustRun("--json", "pg", "wal-push", "--system-id", "42", "--spool", spool, seg("000000010000000000000001"))
	if m := res.Message(t, "summary"); m["archived"] != 1.0 || !strings.Contains(m["reason"].(string), "no pusher") {
		t.Errorf("wal-push --spool without a pusher: %s", res)
	}

	// A pusher holds the lock.
	lock, err := os.OpenFile(filepath.Join(spool, "pusher.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	must(t, err)
	must(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	res = e.mustRun("--json", "pg", "wal-push", "--system-id", "42", "--spool", spool, seg("000000010000000000000002"))
	if m := res.Message(t, "summary"); m["archived"] != 0.0 || m["reason"] != "" {
		t.Errorf("wal-push --spool with a pusher: %s", res)
	}
	text := e.mustRun("pg", "info", "--spool", spool)
	for _, want := range []string{"WAL spool " + spool, "waiting: 1 file(s)", "oldest 000000010000000000000002", "pusher: running"} {
		if !strings.Contains(text.Stdout, want) {
			t.Errorf("pg info --spool lacks %q:\n%s", want, text)
		}
	}
	if m := e.mustRun("--json", "pg", "info", "--spool", spool).Message(t, "pg_wal_spool"); m["files"] != 1.0 || m["pusher_running"] != true || m["oldest"] != "000000010000000000000002" {
		t.Errorf("pg_wal_spool: %v", m)
	}
	dest := filepath.Join(t.TempDir(), "fetched")
	e.expect(1, "pg", "wal-fetch", "--system-id", "42", "000000010000000000000002", dest)
	e.mustRun("pg", "wal-fetch", "--system-id", "42", "000000010000000000000001", dest)
	lock.Close()

	res = e.mustRun("pg", "wal-spool", "--once", spool)
	if !strings.Contains(res.Stdout, "archived 1 WAL file(s)") {
		t.Errorf("wal-spool --once: %s", res)
	}
	e.mustRun("pg", "wal-fetch", "--system-id", "42", "000000010000000000000002", dest)
	if b, _ := os.ReadFile(dest); string(b) != "WAL 000000010000000000000002" {
		t.Errorf("fetched %q", b)
	}
	text = e.mustRun("pg", "info", "--spool", spool)
	for _, want := range []string{"000000010000000000000001 .. 000000010000000000000002", "continuous: no gap", "waiting: none", "pusher: not running", "last archived: 1 file(s)"} {
		if !strings.Contains(text.Stdout, want) {
			t.Errorf("pg info --spool after the pusher lacks %q:\n%s", want, text)
		}
	}

	for _, bad := range []string{"0", "-3", "lots", "12 parsecs"} {
		if res := e.expect(1, "pg", "wal-push", "--system-id", "42", "--spool", spool, "--spool-max", bad, seg("000000010000000000000003")); !strings.Contains(res.Stderr, "--spool-max") {
			t.Errorf("--spool-max %s: %s", bad, res)
		}
	}
	e.mustRun("pg", "wal-push", "--system-id", "42", "--spool", spool, "--spool-max", "1GiB", seg("000000010000000000000003"))
	if res := e.expect(1, "pg", "info", "--spool", filepath.Join(spool, "missing")); !strings.Contains(res.Stderr, "missing") {
		t.Errorf("pg info of a missing spool: %s", res)
	}
}
