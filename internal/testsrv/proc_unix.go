//go:build unix

package testsrv

import (
	"os"
	"os/exec"
	"syscall"
)

// ownGroup makes cmd the leader of a process group of its own, so that
// stopping it also stops what it started.
func ownGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// signalGroup sends SIGTERM (or SIGKILL) to the process group of p.
func signalGroup(p *os.Process, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-p.Pid, sig)
}

// stopAndKill freezes pid, then kills the processes kids finds (sshd's
// sessions, which leave its process group).
func stopAndKill(pid int, kids func(int) []int) {
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	for _, c := range kids(pid) {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
}
