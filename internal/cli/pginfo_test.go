package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestPGInfoGaps: pg info of archived WAL names every missing range and
// changes when an archive snapshot is forgotten (the segments' names are
// what counts; a real server's WAL is in internal/e2e).
func TestPGInfoGaps(t *testing.T) {
	e := initRepo(t)
	dir := t.TempDir()
	push := func(name string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, []byte("WAL "+name))
		return e.backupJSONArgs(t, "pg", "wal-push", "--system-id", "42", p)
	}
	push("000000010000000000000001")
	second := push("000000010000000000000002")
	push("000000010000000000000004")
	push("000000010000000000000005")

	info := func() map[string]any {
		t.Helper()
		res := e.mustRun("--json", "pg", "info")
		m := res.Message(t, "pg_info")
		if m["system_identifier"] != "42" {
			t.Fatalf("pg info: %s", res)
		}
		return m["wal"].(map[string]any)
	}
	gaps := func(wal map[string]any) string {
		b, _ := json.Marshal(wal["gaps"])
		return string(b)
	}
	wal := info()
	if wal["continuous"] != false || wal["first"] != "000000010000000000000001" || wal["last"] != "000000010000000000000005" || wal["segments"] != 4.0 ||
		!strings.Contains(gaps(wal), `"count":1,"first":"000000010000000000000003","last":"000000010000000000000003"`) {
		t.Errorf("wal: %v", wal)
	}
	text := e.mustRun("pg", "info")
	for _, want := range []string{"PostgreSQL system 42", "base backups: 0", "000000010000000000000001 .. 000000010000000000000005, timeline 1, 4 segments",
		"gap: 000000010000000000000003 missing", "recoverable: no base backup"} {
		if !strings.Contains(text.Stdout, want) {
			t.Errorf("pg info lacks %q:\n%s", want, text)
		}
	}

	e.mustRun("forget", second)
	if g := gaps(info()); !strings.Contains(g, `"count":2,"first":"000000010000000000000002","last":"000000010000000000000003"`) {
		t.Errorf("after forgetting segment 2: gaps %s", g)
	}
	if text := e.mustRun("pg", "info"); !strings.Contains(text.Stdout, "gap: 000000010000000000000002..000000010000000000000003 missing (2 segments)") {
		t.Errorf("pg info after forgetting segment 2:\n%s", text)
	}
}

// backupJSONArgs runs a command printing a backup summary with --json
// and returns the snapshot's ID.
func (e *repoEnv) backupJSONArgs(t *testing.T, args ...string) string {
	t.Helper()
	m := e.mustRun(append([]string{"--json"}, args...)...).Message(t, "summary")
	id, _ := m["snapshot_id"].(string)
	if id == "" {
		t.Fatalf("no snapshot_id in %v", m)
	}
	return id
}
