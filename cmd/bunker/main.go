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
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	pprof.StopCPUProfile()
	os.Exit(code)
}
