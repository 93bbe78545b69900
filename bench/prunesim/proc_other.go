//go:build !linux

package main

import "time"

// peakRSS is known only on Linux (VmHWM); elsewhere the Go heap peak is
// the only memory figure.
func peakRSS() (int64, bool) { return 0, false }

func resetPeakRSS() bool { return false }

// cpuTime is not measured outside Linux: it reports zero.
func cpuTime() time.Duration { return 0 }
