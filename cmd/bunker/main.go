// Command bunker backs up directory trees and streams into deduplicated,
// compressed, encrypted repositories.
package main

import (
	"context"
	"fmt"
	"io"
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
	// For performance work: BUNKER_CPUPROFILE=FILE writes a CPU profile,
	// BUNKER_TRACE=FILE an execution trace (go tool trace). Both are
	// stopped before os.Exit below, which skips deferred calls.
	record("BUNKER_CPUPROFILE", "cpu profile", pprof.StartCPUProfile)
	record("BUNKER_TRACE", "trace", trace.Start)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	pprof.StopCPUProfile()
	trace.Stop()
	os.Exit(code)
}

// record starts a recorder writing to the file named by the environment
// variable env, if it is set.
func record(env, what string, start func(io.Writer) error) {
	p := os.Getenv(env)
	if p == "" {
		return
	}
	f, err := os.Create(p)
	if err == nil {
		err = start(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bunker: %s: %v\n", what, err)
	}
}
