// Command floor measures the per-byte cost floors of a Bunker backup on
// this machine, single-core: content-defined chunking, keyed BLAKE3, zstd
// (fastest, Bunker's default level) compression and decompression,
// AES-256-GCM sealing and opening, and sequential reads of the benchmark
// data set. It prints a Markdown table of MB/s (1 MB = 10^6 bytes).
//
// Usage (from the module root):
//
//	go run ./bench/floor -data bench/work/data/<set>/src [-sample-mb 256] [-runs 3]
//
// The data directory is the source tree built by bench/run.sh, with the
// subtrees small/, pg/ and random/. Without -data only synthetic random
// data is measured. The cold-ish disk read drops the data set's pages
// from the page cache file by file (posix_fadvise DONTNEED) before
// reading, so run it after, not before, timing other tools.
package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/chunker"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// blockSize is the unit fed to the hash, compressor and cipher: the
// default average chunk size.
const blockSize = chunker.DefaultAvg

type input struct {
	name string // column header
	dir  string // subtree of the data set (for the disk read)
	data []byte // in-memory sample
}

type result struct {
	best, median float64 // MB/s
	note         string
}

func main() {
	dataDir := flag.String("data", "", "data set source tree (with small/, pg/, random/)")
	sampleMB := flag.Int("sample-mb", 256, "in-memory sample size per input, MiB")
	runs := flag.Int("runs", 3, "repetitions of each measurement (best and median are shown)")
	procs := flag.Int("procs", 1, "GOMAXPROCS (1 = single-core floors)")
	noDisk := flag.Bool("no-disk", false, "skip the disk read measurement")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)
	sample := *sampleMB << 20

	var inputs []input
	if *dataDir != "" {
		for _, in := range []struct{ name, sub string }{{"small files", "small"}, {"pgbench dump", "pg"}, {"random", "random"}} {
			dir := filepath.Join(*dataDir, in.sub)
			data, err := loadSample(dir, sample)
			if err != nil {
				fmt.Fprintf(os.Stderr, "floor: %s: %v\n", dir, err)
				os.Exit(1)
			}
			inputs = append(inputs, input{in.name, dir, data})
		}
	} else {
		data := make([]byte, sample)
		_, _ = rand.Read(data)
		inputs = append(inputs, input{"random (synthetic)", "", data})
	}

	var seed [32]byte
	_, _ = rand.Read(seed[:])
	params := chunker.DefaultParams(seed)
	idKey := make([]byte, 32)
	_, _ = rand.Read(idKey)
	key, err := crypto.NewKey(crypto.Random(crypto.KeySize))
	if err != nil {
		panic(err)
	}
	enc, err := pack.NewEncoder(zstd.SpeedFastest, 1)
	if err != nil {
		panic(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		panic(err)
	}
	hasher, err := blake3.NewKeyed(idKey)
	if err != nil {
		panic(err)
	}

	type bench struct {
		name string
		fn   func(in *input) (note string, err error)
	}
	var compressed [][][]byte // per input, for the decompression benchmark
	var sealed [][]byte
	benches := []bench{
		{"Chunker (FastCDC gear, default 512K/1M/8M)", func(in *input) (string, error) {
			c := chunker.New(bytes.NewReader(in.data), params)
			var buf []byte
			n := 0
			for {
				var err error
				buf, err = c.Next(buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					return "", err
				}
				n++
			}
			return fmt.Sprintf("%d chunks", n), nil
		}},
		{"Keyed BLAKE3-256 (zeebo/blake3, 1 MiB blocks)", func(in *input) (string, error) {
			var sum [32]byte
			forBlocks(in.data, func(b []byte) {
				hasher.Reset()
				_, _ = hasher.Write(b)
				hasher.Sum(sum[:0])
			})
			return "", nil
		}},
		{"zstd fastest compress (" + pack.EncoderName + ", 1 MiB blocks)", func(in *input) (string, error) {
			var out []byte
			total := 0
			forBlocks(in.data, func(b []byte) {
				out, _ = enc.AppendFrame(out[:0], b)
				total += len(out)
			})
			return fmt.Sprintf("ratio %.2f", float64(len(in.data))/float64(max(total, 1))), nil
		}},
		{"zstd decompress (MB/s of output)", func(in *input) (string, error) {
			var out []byte
			blocks := compressed[indexOf(inputs, in.name)]
			for i := 0; i < len(blocks); i++ {
				var err error
				out, err = dec.DecodeAll(blocks[i], out[:0])
				if err != nil {
					return "", err
				}
			}
			return "", nil
		}},
		{"AES-256-GCM seal (1 MiB blocks)", func(in *input) (string, error) {
			var out []byte
			forBlocks(in.data, func(b []byte) { out = key.Seal(out[:0], b, nil) })
			return "", nil
		}},
		{"AES-256-GCM open (1 MiB blocks)", func(in *input) (string, error) {
			var out []byte
			for _, s := range sealed {
				var err error
				out, err = key.Open(out[:0], s, nil)
				if err != nil {
					return "", err
				}
			}
			return "", nil
		}},
	}
	// Prepare the compressed blocks of every input and the sealed blocks
	// of the first (the cipher's speed does not depend on the data).
	for _, in := range inputs {
		var blocks [][]byte
		forBlocks(in.data, func(b []byte) { frame, _ := enc.AppendFrame(nil, b); blocks = append(blocks, frame) })
		compressed = append(compressed, blocks)
	}
	forBlocks(inputs[0].data, func(b []byte) { sealed = append(sealed, key.Seal(nil, b, nil)) })

	// The cipher and the hash do not depend on the data: measure them on
	// the last input only (random), the others on every input.
	dataIndependent := map[string]bool{benches[1].name: true, benches[4].name: true, benches[5].name: true}
	table := map[string]map[string]result{}
	for _, b := range benches {
		table[b.name] = map[string]result{}
		for i := range inputs {
			in := &inputs[i]
			if dataIndependent[b.name] && i != len(inputs)-1 {
				continue
			}
			if strings.HasPrefix(b.name, "AES-256-GCM open") && i != len(inputs)-1 {
				continue
			}
			var speeds []float64
			var note string
			for r := 0; r < *runs; r++ {
				runtime.GC()
				start := time.Now()
				n, err := b.fn(in)
				el := time.Since(start)
				if err != nil {
					fmt.Fprintf(os.Stderr, "floor: %s on %s: %v\n", b.name, in.name, err)
					os.Exit(1)
				}
				note = n
				size := len(in.data)
				if strings.HasPrefix(b.name, "AES-256-GCM open") {
					size = len(inputs[0].data)
				}
				speeds = append(speeds, float64(size)/el.Seconds()/1e6)
			}
			table[b.name][in.name] = summarize(speeds, note)
		}
	}

	var diskCold, diskWarm map[string]result
	if !*noDisk && *dataDir != "" {
		diskCold, diskWarm = map[string]result{}, map[string]result{}
		for _, in := range inputs {
			c, files, err := readTree(in.dir, true)
			if err != nil {
				fmt.Fprintf(os.Stderr, "floor: read %s: %v\n", in.dir, err)
				os.Exit(1)
			}
			diskCold[in.name] = result{best: c, median: c, note: fmt.Sprintf("%d files", files)}
			wm, _, err := readTree(in.dir, false)
			if err != nil {
				fmt.Fprintf(os.Stderr, "floor: read %s: %v\n", in.dir, err)
				os.Exit(1)
			}
			diskWarm[in.name] = result{best: wm, median: wm}
		}
	}

	// Output.
	var w strings.Builder
	fmt.Fprintf(&w, "## Per-byte cost floors (single core, GOMAXPROCS=%d)\n\n", *procs)
	fmt.Fprintf(&w, "MB/s (10^6 bytes), best of %d runs (median in brackets); in-memory samples of %d MiB per input. %s, %s.\n\n",
		*runs, *sampleMB, runtime.Version(), cpuModel())
	w.WriteString("| Operation |")
	for _, in := range inputs {
		fmt.Fprintf(&w, " %s |", in.name)
	}
	w.WriteString(" notes |\n|---|")
	for range inputs {
		w.WriteString("---:|")
	}
	w.WriteString("---|\n")
	pr := func(name string, m map[string]result) {
		fmt.Fprintf(&w, "| %s |", name)
		var notes []string
		for _, in := range inputs {
			r, ok := m[in.name]
			if !ok {
				w.WriteString(" – |")
				continue
			}
			if r.best == r.median {
				fmt.Fprintf(&w, " %.0f |", r.best)
			} else {
				fmt.Fprintf(&w, " %.0f (%.0f) |", r.best, r.median)
			}
			if r.note != "" {
				notes = append(notes, in.name+": "+r.note)
			}
		}
		fmt.Fprintf(&w, " %s |\n", strings.Join(notes, "; "))
	}
	for _, b := range benches {
		pr(b.name, table[b.name])
	}
	if diskCold != nil {
		pr("Sequential read of the data set, cold-ish (fadvise DONTNEED first)", diskCold)
		pr("Sequential read of the data set, warm (page cache)", diskWarm)
	}

	// Combined single-core floors: the sum of the per-byte costs.
	last := inputs[len(inputs)-1].name
	hashS := table[benches[1].name][last].best
	sealS := table[benches[4].name][last].best
	openS := table[benches[5].name][last].best
	w.WriteString("\nCombined single-core CPU floors (sum of the per-byte costs above, best runs; divide by the number of cores used for the ideal wall-clock floor):\n\n")
	w.WriteString("| Pipeline |")
	for _, in := range inputs {
		fmt.Fprintf(&w, " %s |", in.name)
	}
	w.WriteString("\n|---|")
	for range inputs {
		w.WriteString("---:|")
	}
	w.WriteString("\n| Backup: chunk + hash + compress + seal |")
	for _, in := range inputs {
		fmt.Fprintf(&w, " %.0f |", combine(table[benches[0].name][in.name].best, hashS, table[benches[2].name][in.name].best, sealS))
	}
	w.WriteString("\n| Restore/verify: open + decompress + hash |")
	for _, in := range inputs {
		fmt.Fprintf(&w, " %.0f |", combine(openS, table[benches[3].name][in.name].best, hashS))
	}
	w.WriteString("\n")
	fmt.Print(w.String())
}

func indexOf(inputs []input, name string) int {
	return slices.IndexFunc(inputs, func(x input) bool { return x.name == name })
}

// combine returns the throughput of doing all the given steps on every
// byte, one after the other, on one core.
func combine(speeds ...float64) float64 {
	var s float64
	for _, v := range speeds {
		if v <= 0 || math.IsNaN(v) {
			return math.NaN()
		}
		s += 1 / v
	}
	return 1 / s
}

func summarize(speeds []float64, note string) result {
	s := slices.Clone(speeds)
	slices.Sort(s)
	return result{best: s[len(s)-1], median: s[len(s)/2], note: note}
}

func forBlocks(data []byte, f func([]byte)) {
	for off := 0; off < len(data); off += blockSize {
		f(data[off:min(off+blockSize, len(data))])
	}
}

// loadSample concatenates the regular files under dir (in walk order) up
// to n bytes.
func loadSample(dir string, n int) ([]byte, error) {
	buf := make([]byte, 0, n)
	errFull := errors.New("full")
	err := eachFile(dir, func(f *os.File) error {
		m, err := io.ReadFull(f, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return err
		}
		if len(buf) == cap(buf) {
			return errFull
		}
		return nil
	})
	if err != nil && err != errFull {
		return nil, err
	}
	if len(buf) == 0 {
		return nil, errors.New("no data")
	}
	return buf, nil
}

// eachFile calls fn with every regular file under dir, opened, in walk
// order; an error stops the walk.
func eachFile(dir string, fn func(f *os.File) error) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return fn(f)
	})
}

// readTree reads every regular file under dir sequentially with a 1 MiB
// buffer and returns MB/s and the number of files. With cold it first
// asks the kernel to drop each file's cached pages.
func readTree(dir string, cold bool) (float64, int, error) {
	buf := make([]byte, 1<<20)
	var total int64
	files := 0
	start := time.Now()
	err := eachFile(dir, func(f *os.File) error {
		if cold {
			dropCache(f)
		}
		for {
			n, err := f.Read(buf)
			total += int64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		files++
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return float64(total) / time.Since(start).Seconds() / 1e6, files, nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
