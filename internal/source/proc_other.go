//go:build !unix

package source

import "os/exec"

// ownGroup: without process groups, the context kills the process only.
func ownGroup(cmd *exec.Cmd) {}

func killedBySignal(ee *exec.ExitError) bool { return ee.ExitCode() == -1 }
