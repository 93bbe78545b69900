// Command scale holds the helpers of the scale-set benchmark in
// bench/scale/run.sh (issue 18, target 3): it writes a set of many small
// files whose sizes follow a real tree's distribution, in deep and wide
// directories, plus one large file; applies and reverts the deterministic
// "1% change"; estimates the disk a run needs; and turns the raw
// measurements into reports. Everything it writes is a function of the
// seed and the flags. It is not part of Bunker; see docs/PERFORMANCE.md.
//
// Usage:
//
//	scale plan      -files N -big SIZE [-seed S]
//	scale gen       -src DIR -files N -big SIZE [-seed S] [-j J]
//	scale mutate    -src DIR -stash DIR -files N -big SIZE [-seed S] -round R [-percent P]
//	scale revert    -src DIR -stash DIR
//	scale summarize -csv RAW.csv -meta META.txt -md OUT.md -json OUT.json
//	scale curve     -md OUT.md -json OUT.json RESULTS.json...
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "plan":
		err = cmdPlan(args)
	case "gen":
		err = cmdGen(args)
	case "mutate":
		err = cmdMutate(args)
	case "revert":
		err = cmdRevert(args)
	case "summarize":
		err = cmdSummarize(args)
	case "curve":
		err = cmdCurve(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scale %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: scale plan|gen|mutate|revert|summarize|curve [flags]")
	os.Exit(2)
}
