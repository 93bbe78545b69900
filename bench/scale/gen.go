package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// setFlags are the flags that define a set; every command that
// recomputes the layout takes the same ones.
type setFlags struct {
	files int
	big   string
	seed  uint64
}

func (s *setFlags) register(fl *flag.FlagSet) {
	fl.IntVar(&s.files, "files", 20000, "number of small files")
	fl.StringVar(&s.big, "big", "256MiB", "size of the large file (0 for none)")
	fl.Uint64Var(&s.seed, "seed", 1, "seed of the layout and the content")
}

func (s *setFlags) bigBytes() (int64, error) {
	if s.files < 1 {
		return 0, fmt.Errorf("-files %d: want at least 1", s.files)
	}
	return parseSize(s.big)
}

// cmdPlan prints the set's shape and the bytes it takes, as key=value
// lines run.sh reads to check free space before it starts.
func cmdPlan(args []string) error {
	fl := flag.NewFlagSet("plan", flag.ExitOnError)
	var sf setFlags
	sf.register(fl)
	_ = fl.Parse(args)
	big, err := sf.bigBytes()
	if err != nil {
		return err
	}
	l := newLayout(sf.seed, sf.files)
	var bytes, onDisk int64
	perDir := make([]int, len(l.dirs))
	for _, f := range l.files {
		bytes += int64(f.size)
		onDisk += (int64(f.size) + 4095) &^ 4095
		perDir[f.dir]++
	}
	maxPer := 0
	deepest := 0
	for i, d := range l.dirs {
		maxPer = max(maxPer, perDir[i])
		if d != "." {
			deepest = max(deepest, strings.Count(d, "/")+1)
		}
	}
	fmt.Printf("files=%d\ndirs=%d\nsmall_bytes=%d\nsmall_disk_bytes=%d\nbig_bytes=%d\nmax_files_per_dir=%d\ndepth=%d\n",
		sf.files, len(l.dirs), bytes, onDisk, big, maxPer, deepest)
	return nil
}

// cmdGen writes the set into src (created if missing): the directories,
// the small files in parallel, then the large file in 1 MiB blocks.
func cmdGen(args []string) error {
	fl := flag.NewFlagSet("gen", flag.ExitOnError)
	var sf setFlags
	sf.register(fl)
	src := fl.String("src", "", "directory to write the set into")
	jobs := fl.Int("j", runtime.GOMAXPROCS(0), "parallel writers")
	_ = fl.Parse(args)
	if *src == "" {
		return errors.New("-src is required")
	}
	big, err := sf.bigBytes()
	if err != nil {
		return err
	}
	start := time.Now()
	l := newLayout(sf.seed, sf.files)
	for _, d := range l.dirs {
		if err := os.MkdirAll(filepath.Join(*src, d), 0o755); err != nil {
			return err
		}
	}
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	const batch = 1000
	for range max(1, *jobs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, maxSize)
			for lo := range next {
				for i := lo; i < min(lo+batch, len(l.files)); i++ {
					b := buf[:l.files[i].size]
					fillContent(b, contentSeed(sf.seed, "file", uint64(i), 0))
					p := filepath.Join(*src, l.path(i))
					if err := os.WriteFile(p, b, 0o644); err != nil {
						fail(err)
						return
					}
				}
			}
		}()
	}
	step := max(len(l.files)/10, batch)
	for lo := 0; lo < len(l.files); lo += batch {
		if lo > 0 && lo%step < batch {
			fmt.Fprintf(os.Stderr, "gen: %d of %d files (%.0f s)\n", lo, len(l.files), time.Since(start).Seconds())
		}
		next <- lo
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	if big > 0 {
		if err := writeBig(filepath.Join(*src, bigName), big, sf.seed, *jobs); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %d files in %d directories and a %d-byte %s into %s in %.1f s\n",
		len(l.files), len(l.dirs), big, bigName, *src, time.Since(start).Seconds())
	return nil
}

// writeBig writes the large file block by block, each block's content
// keyed by its index.
func writeBig(path string, size int64, seed uint64, jobs int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	blocks := (size + blockSize - 1) / blockSize
	next := make(chan int64)
	errs := make(chan error, max(1, jobs))
	var wg sync.WaitGroup
	for range max(1, jobs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, blockSize)
			for b := range next {
				off := b * blockSize
				n := min(int64(blockSize), size-off)
				fillContent(buf[:n], contentSeed(seed, "big", uint64(b), 0))
				if _, err := f.WriteAt(buf[:n], off); err != nil {
					errs <- fmt.Errorf("write %s at %d: %w", path, off, err)
					return
				}
			}
		}()
	}
	var werr error
loop:
	for b := int64(0); b < blocks; b++ {
		select {
		case next <- b:
		case werr = <-errs:
			break loop
		}
	}
	close(next)
	wg.Wait()
	if werr == nil {
		select {
		case werr = <-errs:
		default:
		}
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	return werr
}

const manifestName = "manifest.tsv"

// patchLen is the number of bytes rewritten in place in a changed file.
const patchLen = 16

// cmdMutate applies round R's change to the set: of percent% of the
// small files (rounded up), half are rewritten in place (16 bytes),
// a quarter deleted, and as many new files as the rest added to
// directories picked by the layout's weights; in the large file,
// percent% of its 1 MiB blocks are rewritten. The choice and the bytes
// depend only on the seed and the round. Originals go to stash (on the
// same file system as src), and a manifest line is written before each
// change, so that revert undoes an interrupted mutation too. A pending
// mutation is reverted first.
func cmdMutate(args []string) error {
	fl := flag.NewFlagSet("mutate", flag.ExitOnError)
	var sf setFlags
	sf.register(fl)
	src := fl.String("src", "", "the set's directory")
	stash := fl.String("stash", "", "stash directory (same file system as -src)")
	round := fl.Uint64("round", 1, "round number (selects the files and the bytes)")
	percent := fl.Float64("percent", 1, "percentage of files (and of the large file's blocks) to change")
	_ = fl.Parse(args)
	if *src == "" || *stash == "" {
		return errors.New("-src and -stash are required")
	}
	big, err := sf.bigBytes()
	if err != nil {
		return err
	}
	if err := revert(*src, *stash); err != nil {
		return fmt.Errorf("reverting the previous mutation: %w", err)
	}
	for _, d := range []string{"orig", "del", "big"} {
		if err := os.MkdirAll(filepath.Join(*stash, d), 0o700); err != nil {
			return err
		}
	}
	mf, err := os.OpenFile(filepath.Join(*stash, manifestName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer mf.Close()
	record := func(fields ...string) error {
		if _, err := fmt.Fprintln(mf, strings.Join(fields, "\t")); err != nil {
			return err
		}
		return mf.Sync()
	}

	l := newLayout(sf.seed, sf.files)
	rng := rand.New(rand.NewPCG(sf.seed^*round, 0x6d7574617465))
	n := min(int(float64(len(l.files))*(*percent)/100+0.999999), len(l.files))
	nMod, nDel := n/2, n/4
	nAdd := n - nMod - nDel
	perm := rng.Perm(len(l.files))[:nMod+nDel]
	var patched int
	for j, fi := range perm[:nMod] {
		rel := l.path(fi)
		p := filepath.Join(*src, rel)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		orig, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		name := strconv.Itoa(j)
		if err := os.WriteFile(filepath.Join(*stash, "orig", name), orig, 0o600); err != nil {
			return err
		}
		if err := record("M", name, strconv.FormatInt(st.ModTime().UnixNano(), 10), rel); err != nil {
			return err
		}
		k := min(patchLen, len(orig))
		off := rng.IntN(len(orig) - k + 1)
		patch := make([]byte, k)
		for i := range patch {
			patch[i] = orig[off+i] ^ byte(1+rng.IntN(255))
		}
		if err := writeAt(p, patch, int64(off)); err != nil {
			return err
		}
		patched += k
	}
	for j, fi := range perm[nMod:] {
		rel := l.path(fi)
		name := strconv.Itoa(j)
		if err := record("D", name, "", rel); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(*src, rel), filepath.Join(*stash, "del", name)); err != nil {
			return err
		}
	}
	var histCum [len(sizeHistogram)]int
	c := 0
	for i, v := range sizeHistogram {
		c += v
		histCum[i] = c
	}
	var added int64
	for j := range nAdd {
		rel := filepath.Join(l.dirs[l.pickDir(rng)], fmt.Sprintf("new-r%d-%d.dat", *round, j))
		b := make([]byte, drawSize(rng, &histCum))
		fillContent(b, contentSeed(sf.seed, "new", *round, uint64(j)))
		if err := record("A", "", "", rel); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*src, rel), b, 0o644); err != nil {
			return err
		}
		added += int64(len(b))
	}
	fmt.Printf("round %d: rewrote %d bytes in %d files, deleted %d, added %d (%d bytes)", *round, patched, nMod, nDel, nAdd, added)
	if big > 0 {
		p := filepath.Join(*src, bigName)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		mtime := strconv.FormatInt(st.ModTime().UnixNano(), 10)
		blocks := int((big + blockSize - 1) / blockSize)
		nb := min(int(float64(blocks)*(*percent)/100+0.999999), blocks)
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		buf := make([]byte, blockSize)
		for k, b := range rng.Perm(blocks)[:nb] {
			off := int64(b) * blockSize
			m := min(int64(blockSize), big-off)
			if _, err := f.ReadAt(buf[:m], off); err != nil {
				return fmt.Errorf("read %s at %d: %w", p, off, err)
			}
			name := strconv.Itoa(k)
			if err := os.WriteFile(filepath.Join(*stash, "big", name), buf[:m], 0o600); err != nil {
				return err
			}
			if err := record("B", name, mtime, bigName, strconv.FormatInt(off, 10)); err != nil {
				return err
			}
			fillContent(buf[:m], contentSeed(sf.seed, "bigmut", *round, uint64(k)))
			if _, err := f.WriteAt(buf[:m], off); err != nil {
				return fmt.Errorf("write %s at %d: %w", p, off, err)
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Printf("; rewrote %d of the %d MiB blocks of %s", nb, blocks, bigName)
	}
	fmt.Println()
	return nil
}

func writeAt(path string, b []byte, off int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(b, off); err != nil {
		f.Close()
		return fmt.Errorf("write %s at %d: %w", path, off, err)
	}
	return f.Close()
}

func cmdRevert(args []string) error {
	fl := flag.NewFlagSet("revert", flag.ExitOnError)
	src := fl.String("src", "", "the set's directory")
	stash := fl.String("stash", "", "stash directory")
	_ = fl.Parse(args)
	if *src == "" || *stash == "" {
		return errors.New("-src and -stash are required")
	}
	return revert(*src, *stash)
}

// revert undoes a (possibly interrupted) mutation recorded in stash:
// changed files and blocks get their bytes and modification times back,
// deleted files come back from the stash, added files go.
func revert(src, stash string) error {
	data, err := os.ReadFile(filepath.Join(stash, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return os.RemoveAll(stash)
	}
	if err != nil {
		return err
	}
	touched := map[string]time.Time{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 4 {
			return fmt.Errorf("%s: bad manifest line %q", stash, line)
		}
		kind, name, mt, rel := f[0], f[1], f[2], f[3]
		dst := filepath.Join(src, rel)
		switch kind {
		case "M", "B":
			ns, err := strconv.ParseInt(mt, 10, 64)
			if err != nil {
				return fmt.Errorf("%s: bad manifest line %q", stash, line)
			}
			sub := map[string]string{"M": "orig", "B": "big"}[kind]
			orig, err := os.ReadFile(filepath.Join(stash, sub, name))
			if errors.Is(err, fs.ErrNotExist) {
				continue // recorded, not yet stashed: never changed
			}
			if err != nil {
				return err
			}
			if kind == "M" {
				if err := os.WriteFile(dst, orig, 0o644); err != nil {
					return err
				}
			} else {
				if len(f) != 5 {
					return fmt.Errorf("%s: bad manifest line %q", stash, line)
				}
				off, err := strconv.ParseInt(f[4], 10, 64)
				if err != nil {
					return fmt.Errorf("%s: bad manifest line %q", stash, line)
				}
				if err := writeAt(dst, orig, off); err != nil {
					return err
				}
			}
			touched[dst] = time.Unix(0, ns)
		case "D":
			o := filepath.Join(stash, "del", name)
			if _, err := os.Lstat(o); err == nil {
				if err := os.Rename(o, dst); err != nil {
					return err
				}
			}
		case "A":
			if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		default:
			return fmt.Errorf("%s: bad manifest line %q", stash, line)
		}
	}
	for p, t := range touched {
		if err := os.Chtimes(p, t, t); err != nil {
			return err
		}
	}
	return os.RemoveAll(stash)
}
