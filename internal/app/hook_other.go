//go:build !unix

package app

import (
	"os/exec"
)

// hookProcessGroup: the context kills the hook's process only.
func hookProcessGroup(cmd *exec.Cmd) {}
