package cli_test

import (
	"path/filepath"
	"testing"
	"time"
)

func TestZZSmoke(t *testing.T) {
	start := time.Now()
	e := initRepo(t, "--pack-size", "1")
	t.Logf("init %v", time.Since(start))
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a.bin"), randBytes(1, 8<<20))
	writeFile(t, filepath.Join(src, "z.bin"), make([]byte, 64<<20))
	start = time.Now()
	s, _ := e.backupJSON(0, src)
	t.Logf("backup %v %v", time.Since(start), s)
	start = time.Now()
	r := e.mustRun("restore", "latest:"+src, "--target", filepath.Join(t.TempDir(), "dst"), "--verify")
	t.Logf("restore %v %s", time.Since(start), r)
}
