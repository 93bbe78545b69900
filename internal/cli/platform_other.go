//go:build !unix

package cli

import (
	"os"
	"os/exec"
)

// fileOwner: no owners to keep here.
func fileOwner(fi os.FileInfo) (int, int) { return -1, -1 }

// hookProcessGroup: the context kills the hook's process only.
func hookProcessGroup(cmd *exec.Cmd) {}
