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
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

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
	// BUNKER_HEAPPROFILE=FILE writes a heap profile each time the live
	// heap reaches a new peak (go tool pprof -sample_index=inuse_space).
	record("BUNKER_CPUPROFILE", "cpu profile", pprof.StartCPUProfile)
	record("BUNKER_TRACE", "trace", trace.Start)
	stopHeap := heapPeaks(os.Getenv("BUNKER_HEAPPROFILE"))
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stopHeap()
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

// heapPeaks writes a heap profile to path (unless it is "") whenever the
// heap that the last collection left live is larger than at any profile
// before, checked every 50 ms; the returned function stops it.
func heapPeaks(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		var peak uint64
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			metrics.Read(sample)
			if live := sample[0].Value.Uint64(); live > peak {
				peak = live
				if err := writeHeapProfile(path); err != nil {
					fmt.Fprintf(os.Stderr, "bunker: heap profile: %v\n", err)
					return
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// writeHeapProfile replaces the file at path with a heap profile.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
