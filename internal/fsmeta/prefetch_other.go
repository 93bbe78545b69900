//go:build !linux

package fsmeta

import "os"

// Prefetch does nothing on this platform.
func Prefetch(f *os.File, n int64) {}
