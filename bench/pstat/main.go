// Command pstat lstats every entry of a tree with a bounded number of
// goroutines and prints the count and the seconds it took: the floor of a
// no-change backup's metadata work (docs/PERFORMANCE.md, "Parallel
// directory scans").
//
//	go run ./bench/pstat [-n 8] DIR
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	n := flag.Int("n", 8, "system calls in flight at once")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: pstat [-n N] DIR")
		os.Exit(2)
	}
	start := time.Now()
	var wg sync.WaitGroup
	var count atomic.Int64
	sem := make(chan struct{}, *n)
	var walk func(dir string)
	walk = func(dir string) {
		defer wg.Done()
		sem <- struct{}{}
		ents, err := os.ReadDir(dir)
		<-sem
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			sem <- struct{}{}
			fi, err := os.Lstat(p)
			<-sem
			count.Add(1)
			if err == nil && fi.IsDir() {
				wg.Add(1)
				go walk(p)
			}
		}
	}
	wg.Add(1)
	go walk(flag.Arg(0))
	wg.Wait()
	fmt.Printf("%d entries in %.3f s\n", count.Load(), time.Since(start).Seconds())
}
