//go:build unix

package safefs_test

import "golang.org/x/sys/unix"

var mkfifo = func(p string) error { return unix.Mkfifo(p, 0o600) }
