//go:build linux

// Command sparseutil builds and checks the sparse VM image of
// bench/sparse/run.sh (issue 18, target 6):
//
//	sparseutil image -out F -size 10G -percent 5 -seed 1   write the image
//	sparseutil alloc F...                                   size, allocated bytes
//	sparseutil cmp A B                                      byte-exact comparison
//
// The image is a sparse file of the given size whose written regions hold
// the given percentage of it: random data in regions of 4 KiB to 8 MiB
// (log-uniform sizes, 512-byte aligned, at random non-overlapping
// offsets), plus a few all-zero regions that are written (allocated in the
// image; a restore may leave them as holes). The same seed gives the same
// image.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "image":
		err = image(os.Args[2:])
	case "alloc":
		err = alloc(os.Args[2:])
	case "cmp":
		err = compare(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sparseutil:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: sparseutil image -out F [-size 10G] [-percent 5] [-seed 1] | alloc F... | cmp A B")
	os.Exit(2)
}

// parseSize reads a byte count with an optional K, M, G or T suffix
// (powers of 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "T"):
		mult, s = 1<<40, strings.TrimSuffix(s, "T")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional K, M, G or T suffix", s)
	}
	return n * mult, nil
}

type region struct {
	off, len int64
	zero     bool // written, but all zeros
}

func image(args []string) error {
	fl := flag.NewFlagSet("image", flag.ExitOnError)
	out := fl.String("out", "", "image file to write (created or truncated)")
	sizeS := fl.String("size", "10G", "size of the image")
	percent := fl.Float64("percent", 5, "percentage of the size written with random data")
	seed := fl.Uint64("seed", 1, "random seed")
	zeros := fl.Int("zero-regions", 4, "all-zero regions written besides the data")
	_ = fl.Parse(args)
	if *out == "" {
		return errors.New("image: -out is required")
	}
	size, err := parseSize(*sizeS)
	if err != nil {
		return err
	}
	if *percent <= 0 || *percent > 50 {
		return fmt.Errorf("image: -percent %v: want (0, 50]", *percent)
	}
	rng := rand.New(rand.NewPCG(*seed, 0x5eed))
	want := int64(float64(size) * *percent / 100)
	const sector = 512
	// Region sizes, log-uniform in [4 KiB, 8 MiB], until the data target
	// is met; then the zero regions (64 KiB to 512 KiB).
	var regs []region
	for got := int64(0); got < want; {
		l := int64(math.Exp(math.Log(4<<10)+rng.Float64()*(math.Log(8<<20)-math.Log(4<<10)))) / sector * sector
		l = min(l, want-got)
		if l < sector {
			l = sector
		}
		regs = append(regs, region{len: l})
		got += l
	}
	for range *zeros {
		regs = append(regs, region{len: (64<<10 + rng.Int64N(448<<10)) / sector * sector, zero: true})
	}
	// Random non-overlapping offsets: shuffle the regions, then spread the
	// free space as random gaps between them.
	rng.Shuffle(len(regs), func(i, j int) { regs[i], regs[j] = regs[j], regs[i] })
	var used int64
	for _, r := range regs {
		used += r.len
	}
	free := (size - used) / sector
	cuts := make([]int64, len(regs))
	for i := range cuts {
		cuts[i] = rng.Int64N(free + 1)
	}
	slices.Sort(cuts)
	off := int64(0)
	prev := int64(0)
	for i := range regs {
		off += (cuts[i] - prev) * sector
		prev = cuts[i]
		regs[i].off = off
		off += regs[i].len
	}

	f, err := os.OpenFile(*out, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("truncate %s: %w", *out, err)
	}
	buf := make([]byte, 8<<20)
	var data, zero int64
	for _, r := range regs {
		b := buf[:r.len]
		if r.zero {
			clear(b)
			zero += r.len
		} else {
			fillRandom(rng, b)
			data += r.len
		}
		if _, err := f.WriteAt(b, r.off); err != nil {
			return fmt.Errorf("write %s at %d: %w", *out, r.off, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", *out, err)
	}
	fmt.Printf("%s: %d bytes, %d regions, %d bytes of random data, %d bytes written as zeros\n", *out, size, len(regs), data, zero)
	return nil
}

// fillRandom fills b with random bytes, 8 at a time.
func fillRandom(rng *rand.Rand, b []byte) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		b[i], b[i+1], b[i+2], b[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	for ; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

// alloc prints, for every file, its size, the bytes allocated to it
// (st_blocks*512) and the bytes of its non-zero 4 KiB blocks (what a
// restore that punches all-zero blocks must allocate at least).
func alloc(args []string) error {
	for _, p := range args {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		nz, err := nonZeroBlocks(p)
		if err != nil {
			return err
		}
		fmt.Printf("%s size=%d allocated=%d nonzero_blocks_bytes=%d\n", p, st.Size, st.Blocks*512, nz)
	}
	return nil
}

// nonZeroBlocks counts the bytes of the 4 KiB blocks of the file at p that
// hold a non-zero byte, reading only its data regions.
func nonZeroBlocks(p string) (int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fd := int(f.Fd())
	buf := make([]byte, 4<<20)
	var n, off int64
	for {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("seek data in %s at %d: %w", p, off, err)
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return 0, fmt.Errorf("seek hole in %s at %d: %w", p, d, err)
		}
		// Data regions start and end on block boundaries.
		for pos := d; pos < h; {
			k, err := f.ReadAt(buf[:min(int64(len(buf)), h-pos)], pos)
			if err != nil && err != io.EOF {
				return 0, fmt.Errorf("read %s at %d: %w", p, pos, err)
			}
			if k == 0 {
				break
			}
			for i := 0; i < k; i += 4096 {
				if !isZero(buf[i:min(k, i+4096)]) {
					n += int64(min(k, i+4096) - i)
				}
			}
			pos += int64(k)
		}
		off = h
	}
}

var zeroBlock [4096]byte

func isZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

// compare reads both files in full and reports the first difference.
func compare(args []string) error {
	if len(args) != 2 {
		usage()
	}
	a, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := os.Open(args[1])
	if err != nil {
		return err
	}
	defer b.Close()
	ba, bb := make([]byte, 4<<20), make([]byte, 4<<20)
	var off int64
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if ea != nil && ea != io.EOF && ea != io.ErrUnexpectedEOF {
			return fmt.Errorf("read %s at %d: %w", args[0], off, ea)
		}
		if eb != nil && eb != io.EOF && eb != io.ErrUnexpectedEOF {
			return fmt.Errorf("read %s at %d: %w", args[1], off, eb)
		}
		if !bytes.Equal(ba[:na], bb[:nb]) {
			n := min(na, nb)
			for i := range n {
				if ba[i] != bb[i] {
					return fmt.Errorf("%s and %s differ at byte %d", args[0], args[1], off+int64(i))
				}
			}
			return fmt.Errorf("%s and %s differ in length: one ends at %d", args[0], args[1], off+int64(n))
		}
		off += int64(na)
		if na < len(ba) {
			fmt.Printf("identical: %d bytes\n", off)
			return nil
		}
	}
}
