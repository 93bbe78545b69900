//go:build unix

package postgres

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWALSpoolRefusesPlantedEntries: a spool others may write to is
// refused, and a spooled name that is a symlink or a hard link to a file
// elsewhere is never opened for archiving (the pusher may run as root).
func TestWALSpoolRefusesPlantedEntries(t *testing.T) {
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWALSpool(open); err == nil || !strings.Contains(err.Error(), "others may write") {
		t.Errorf("a world-writable spool: %v, want it refused", err)
	}
	dir := filepath.Join(t.TempDir(), "spool")
	if _, err := OpenWALSpool(dir); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("not WAL"), 0o600); err != nil {
		t.Fatal(err)
	}
	sym := filepath.Join(dir, SpoolName("42", "000000010000000000000001"))
	hard := filepath.Join(dir, SpoolName("42", "000000010000000000000002"))
	if err := os.Symlink(secret, sym); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(secret, hard); err != nil {
		t.Skipf("no hard link across these temp dirs: %v", err)
	}
	for _, p := range []string{sym, hard} {
		if f, err := openSpooled(p); err == nil {
			f.Close()
			t.Errorf("%s opened for archiving", filepath.Base(p))
		}
	}
}
