// Command bunker backs up directory trees and streams into deduplicated,
// compressed, encrypted repositories.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"syscall"

	"github.com/bunkerbackup/bunker/internal/cli"
)

func main() {
	// Backups hold large transient buffers (chunks, packs); collecting
	// more often keeps the peak near the live set. GOGC still overrides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// BUNKER_CPUPROFILE=FILE writes a CPU profile (for performance work).
	if p := os.Getenv("BUNKER_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer pprof.StopCPUProfile()
			}
		} else {
			fmt.Fprintln(os.Stderr, "bunker: cpu profile:", err)
		}
	}
	// BUNKER_TRACE=FILE writes an execution trace (go tool trace).
	if p := os.Getenv("BUNKER_TRACE"); p != "" {
		if f, err := os.Create(p); err == nil {
			if err := trace.Start(f); err == nil {
				defer trace.Stop()
			}
		} else {
			fmt.Fprintln(os.Stderr, "bunker: trace:", err)
		}
	}
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	pprof.StopCPUProfile()
	trace.Stop()
	os.Exit(code)
}
