// Command benchutil holds the helpers of the side-by-side benchmark in
// bench/run.sh: generating the random part of the data set, applying and
// reverting the deterministic "1% change" mutation, comparing restored
// trees, and turning the raw measurements into the Markdown and JSON
// reports. It is not part of Bunker; see docs/PERFORMANCE.md.
//
// Usage:
//
//	benchutil genrandom -out FILE -bytes N -seed S
//	benchutil mutate    -src DIR -stash DIR -round R [-small REL] [-pg REL] [-percent P]
//	benchutil revert    -src DIR -stash DIR
//	benchutil treestat  DIR
//	benchutil summarize -csv RAW.csv -meta META.txt -md OUT.md -json OUT.json [-floor FLOOR.md]
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
	case "genrandom":
		err = cmdGenRandom(args)
	case "mutate":
		err = cmdMutate(args)
	case "revert":
		err = cmdRevert(args)
	case "treestat":
		err = cmdTreeStat(args)
	case "summarize":
		err = cmdSummarize(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchutil %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchutil genrandom|mutate|revert|treestat|summarize [flags]")
	os.Exit(2)
}
