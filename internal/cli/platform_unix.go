//go:build unix

package cli

import (
	"os"
	"os/exec"
	"syscall"
)

// fileOwner returns a file's uid and gid.
func fileOwner(fi os.FileInfo) (int, int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}

// hookProcessGroup runs a hook in its own process group and kills the
// whole group at its timeout: hooks start children.
func hookProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
