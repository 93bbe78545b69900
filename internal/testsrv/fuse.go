package testsrv

import (
	"os"
	"testing"
)

// FUSE skips the test (or fails it under BUNKER_REQUIRE_SERVERS=1) unless
// FUSE filesystems can be mounted here: /dev/fuse exists and fusermount3
// (Debian package fuse3, installed by scripts/tools/fuse3.sh) is on PATH,
// where go-fuse looks for it.
func FUSE(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		Missing(t, "FUSE: no /dev/fuse (%v)", err)
	}
	if LookTool("fusermount3", "") == "" {
		Missing(t, "fusermount3 (Debian package fuse3) is not installed")
	}
}
