//go:build unix

package app

import (
	"os/exec"
	"syscall"
)

// hookProcessGroup runs a hook in its own process group and kills the
// whole group at its timeout: hooks start children.
func hookProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
