//go:build !linux

package restorer

import "os"

// openSpillFile makes an unlinked spill file of mode 0600 in dir.
func openSpillFile(dir string) (*os.File, string, error) { return createUnlinked(dir) }

// punchHole does nothing here: the blocks are freed when the file is
// closed.
func punchHole(*os.File, int64, int64) {}
