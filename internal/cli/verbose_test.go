package cli_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBackupListsFiles: -vv lists every file as new, modified or
// unchanged against the parent, as restic does (verbose_status lines
// with --json); without it no file is listed.
func TestBackupListsFiles(t *testing.T) {
	e := initRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.txt"), []byte("alpha"))
	writeFile(t, filepath.Join(src, "b.txt"), []byte("bravo"))
	r := e.mustRun("-vv", "backup", src)
	for _, f := range []string{"a.txt", "b.txt"} {
		if !strings.Contains(r.Stdout, "new       "+filepath.Join(src, f)) {
			t.Errorf("-vv does not list %s as new:\n%s", f, r)
		}
	}
	time.Sleep(10 * time.Millisecond) // a new mtime for b.txt
	writeFile(t, filepath.Join(src, "b.txt"), []byte("bravo, changed"))
	r = e.mustRun("--json", "-vv", "backup", src)
	if !strings.Contains(r.Stdout, `{"action":"unchanged","item":"`+filepath.Join(src, "a.txt")+`","message_type":"verbose_status"}`) ||
		!strings.Contains(r.Stdout, `{"action":"modified","item":"`+filepath.Join(src, "b.txt")+`","message_type":"verbose_status"}`) {
		t.Errorf("--json -vv:\n%s", r)
	}
	if r := e.mustRun("backup", src); strings.Contains(r.Stdout, "unchanged ") {
		t.Errorf("files listed without -vv:\n%s", r)
	}
}
