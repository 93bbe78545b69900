// Command indexmem measures the resident memory of the in-memory blob index
// (internal/engine/index) for synthetic repositories of many blobs: it
// builds an Index from index files the way LoadIndex does (one batch),
// drops the files, and reports the heap it keeps per blob (HeapAlloc after
// a GC, minus the baseline), the load time, lookup times, and the time
// Each takes to read the full IDs back from the files. run.sh runs it and
// restic's index beside it; docs/PERFORMANCE.md ("Index memory") has the
// figures.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

func main() {
	counts := flag.String("n", "10000000", "comma-separated blob counts, each measured in turn")
	perPack := flag.Int("per-pack", 16, "blobs per pack (a 16 MiB pack of 1 MiB chunks holds about 16)")
	perFile := flag.Int("per-file", 50000, "entries per index file")
	lookups := flag.Int("lookups", 2_000_000, "lookups timed per kind")
	each := flag.Bool("each", true, "time Each, reading the full IDs back from regenerated files")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "indexmem: cpu profile: %v\n", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	for _, s := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 || *perPack <= 0 || *perFile <= 0 {
			fmt.Fprintf(os.Stderr, "indexmem: bad count %q, -per-pack %d or -per-file %d\n", s, *perPack, *perFile)
			os.Exit(2)
		}
		measure(n, *perPack, *perFile, *lookups, *each)
	}
}

// blobID is the ID of synthetic blob i: random-looking and reproducible,
// so lookups and Each can name blobs without keeping them.
func blobID(i uint64) format.ID {
	var id format.ID
	for k := range uint64(4) {
		binary.LittleEndian.PutUint64(id[8*k:], splitmix(i*4+k))
	}
	return id
}

func packID(p uint64) format.ID {
	id := blobID(p)
	id[0] ^= 0xa5 // not a blob's ID
	return id
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// files calls fn with the index files of n blobs, perFile entries each,
// perPack blobs to a pack; every 8th blob is a tree blob.
func files(n, perPack, perFile int, fn func(*index.File) error) error {
	for start := 0; start < n; start += perFile {
		end := min(n, start+perFile)
		f := &index.File{Entries: make([]index.FileEntry, 0, end-start)}
		last := -1
		off := uint32(format.HeaderSize)
		for i := start; i < end; i++ {
			p := i / perPack
			if p != last {
				f.Packs = append(f.Packs, packID(uint64(p)))
				last = p
				off = format.HeaderSize
			}
			t := pack.DataBlob
			if i%8 == 7 {
				t = pack.TreeBlob
			}
			raw := uint32(4096 + splitmix(uint64(i))%(1<<20))
			e := pack.Entry{Type: t, ID: blobID(uint64(i)), Offset: off, Length: raw/2 + 45, RawLength: raw}
			off += e.Length
			f.Entries = append(f.Entries, index.FileEntry{Pack: uint32(len(f.Packs) - 1), Entry: e})
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func measure(n, perPack, perFile, lookups int, each bool) {
	debug.FreeOSMemory()
	base := heap()
	var all []*index.File
	_ = files(n, perPack, perFile, func(f *index.File) error { all = append(all, f); return nil })
	x := index.New()
	start := time.Now()
	x.AddFiles(all)
	load := time.Since(start)
	all = nil
	resident := heap() - base
	typeOf := func(i uint64) pack.BlobType {
		if i%8 == 7 {
			return pack.TreeBlob
		}
		return pack.DataBlob
	}
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	ids := make([]uint64, lookups)
	for i := range ids {
		ids[i] = rng.Uint64N(uint64(n))
	}
	start = time.Now()
	for _, i := range ids {
		if !x.Has(blobID(i), typeOf(i)) {
			fmt.Fprintf(os.Stderr, "indexmem: blob %d not found\n", i)
			os.Exit(1)
		}
	}
	hit := time.Since(start)
	start = time.Now()
	for _, i := range ids {
		if x.Has(blobID(i+uint64(n)), pack.DataBlob) {
			fmt.Fprintf(os.Stderr, "indexmem: blob %d found\n", i+uint64(n))
			os.Exit(1)
		}
	}
	miss := time.Since(start)
	// The time to make the IDs, to subtract from the lookups.
	start = time.Now()
	var sink byte
	for _, i := range ids {
		id := blobID(i)
		sink ^= id[3]
	}
	gen := time.Since(start)
	eachTime := "-"
	if each {
		start = time.Now()
		count := 0
		err := x.Each(func(yield func(*index.File) error) error { return files(n, perPack, perFile, yield) }, func(index.Location) bool {
			count++
			return true
		})
		if err != nil || count != n {
			fmt.Fprintf(os.Stderr, "indexmem: Each: %d of %d entries, %v\n", count, n, err)
			os.Exit(1)
		}
		eachTime = time.Since(start).Round(10 * time.Millisecond).String()
	}
	fmt.Printf("bunker n=%d per-pack=%d resident=%d B (%.2f B/blob) load=%v lookup-hit=%.0f ns lookup-miss=%.0f ns each=%s%s\n",
		n, perPack, resident, float64(resident)/float64(n), load.Round(10*time.Millisecond),
		float64(hit-gen)/float64(lookups), float64(miss-gen)/float64(lookups), eachTime, "")
	fmt.Fprint(io.Discard, sink) // the lookups' results stay used
	runtime.KeepAlive(x)
}
