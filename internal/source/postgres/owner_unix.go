//go:build unix

package postgres

import (
	"os"
	"syscall"
)

// fileOwner returns a file's uid and gid.
func fileOwner(fi os.FileInfo) (int, int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}
