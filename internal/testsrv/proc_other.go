//go:build !unix

package testsrv

import (
	"os"
	"os/exec"
)

// ownGroup does nothing: process groups are a Unix notion.
func ownGroup(*exec.Cmd) {}

// signalGroup ends p (there is no process group to signal).
func signalGroup(p *os.Process, _ bool) { _ = p.Kill() }

// stopAndKill kills the processes kids finds.
func stopAndKill(pid int, kids func(int) []int) {
	for _, c := range kids(pid) {
		if p, err := os.FindProcess(c); err == nil {
			_ = p.Kill()
		}
	}
}
