// Command prunesim simulates maintenance of a large repository (issue 18,
// target 7): it generates a real, openable repository whose data blobs
// exist only in its index files (the data packs are synthetic: listed with
// computed sizes, never written), with real trees and snapshots, and then,
// in a process of its own, measures prune planning (a dry run of
// maintenance.PlanPrune) and a check that reads no data: wall and CPU
// time, peak resident set and Go heap peak. run.sh runs both for several
// blob counts; docs/PERFORMANCE.md ("Maintenance at scale") has the
// figures and the repository's shape.
//
//	prunesim -gen DIR -n 10000000 -snapshots 10000
//	prunesim -plan DIR [-check=false] [-memprofile FILE] [-cpuprofile FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	gen := flag.String("gen", "", "generate a repository in this directory (created; must not hold one)")
	plan := flag.String("plan", "", "measure prune planning (and the check) on the repository -gen made in this directory")
	lay := layout{}
	flag.IntVar(&lay.Blobs, "n", 1_000_000, "-gen: data blobs")
	flag.IntVar(&lay.Snapshots, "snapshots", 10_000, "-gen: snapshots")
	flag.IntVar(&lay.PerPack, "per-pack", 32, "-gen: blobs per data pack (32 blobs of 512 KiB sealed on average make a 16 MiB pack)")
	flag.Uint64Var(&lay.Seed, "seed", 1, "-gen: seed every blob and pack ID, length and file derives from")
	flag.IntVar(&lay.PerIndexFile, "per-index-file", 100_000, "-gen: data entries per index file (rounded down to whole packs)")
	flag.IntVar(&lay.FilesPerDir, "files-per-dir", 64, "-gen: files per leaf directory")
	flag.IntVar(&lay.DirsPerMid, "dirs-per-mid", 64, "-gen: leaf directories per mid directory (what a snapshot's root lists)")
	flag.IntVar(&lay.Window, "window", 4, "-gen: mid directories each snapshot references (about 16k blobs each)")
	flag.Float64Var(&lay.DeadMidShare, "dead-mids", 0.10, "-gen: share of the mid directories no snapshot references (wholly unused packs)")
	flag.IntVar(&lay.DeadFilePercent, "dead-files", 8, "-gen: percent of the files of referenced directories left out of them (partly used packs)")
	check := flag.Bool("check", true, "-plan: also run the checker without reading data, after planning")
	sweep := flag.Bool("sweep", false, "-plan: last, run a whole prune that deletes the unused packs (its sweep included) and measure it; this changes the repository")
	sweepProfile := flag.String("sweep-memprofile", "", "-plan -sweep: write a heap profile taken near the whole prune's heap peak to this file")
	sweepLimit := flag.Int64("sweep-limit", 0, "-plan -sweep: the soft memory limit in bytes while the prune executes (0: bunker prune's, app.SweepMemoryLimit, unless -budget=false or GOMEMLIMIT)")
	budget := flag.Bool("budget", true, "-plan: plan under the soft memory limit bunker prune sets (the index's size and 144 MiB; GOMEMLIMIT overrides)")
	memProfile := flag.String("memprofile", "", "-plan: write a heap profile taken when planning returned (the plan still alive) to this file")
	cpuProfile := flag.String("cpuprofile", "", "-plan: write a CPU profile of the measurements (planning and check) to this file")
	maxUnused := flag.Float64("max-unused", 0.05, "-plan: MaxUnused of the planned prune (bunker prune's default 5%)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch {
	case (*gen == "") == (*plan == ""):
		fmt.Fprintln(os.Stderr, "prunesim: give exactly one of -gen DIR and -plan DIR")
		flag.Usage()
		os.Exit(2)
	case *gen != "":
		if err = lay.validate(); err == nil {
			err = generate(ctx, *gen, &lay)
		}
	default:
		err = measure(ctx, *plan, *maxUnused, *check, *sweep, *budget, *memProfile, *cpuProfile, *sweepProfile, *sweepLimit)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "prunesim: %v\n", err)
		os.Exit(1)
	}
}
