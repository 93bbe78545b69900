package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// sizeHistogram is the size distribution of the small files: the regular
// files of 1 KiB to 64 KiB under /usr/share and /usr/local/go (Debian 12,
// Go 1.26) counted once into 24 buckets, four per octave: bucket b holds
// sizes in [1024·2^(b/4), 1024·2^((b+1)/4)). 34,586 files, mean 6.3 KiB.
// Files outside the range (59,607 below 1 KiB, 1,816 above 64 KiB) are
// left out: the issue asks for 1-64 KiB, and the big file stands for the
// large end.
var sizeHistogram = [24]int{
	4656, 4215, 4229, 2727, 2291, 2104, 2003, 1581, 1207, 1048, 953, 884,
	918, 799, 751, 649, 650, 571, 572, 483, 424, 304, 292, 275,
}

const (
	minSize = 1 << 10
	maxSize = 64 << 10
	// maxDepth is the deepest directory level below the set's root.
	maxDepth = 8
	// filesPerDir is the mean number of files per directory (the real
	// trees above have 12; a little wider keeps 2M files at 100k dirs).
	filesPerDir = 20
	// dirWeightSigma spreads the files over the directories: each
	// directory's share is log-normal with this sigma, so most hold a
	// handful to tens of files and a few hold thousands.
	dirWeightSigma = 1.5
)

// words is the vocabulary of the compressible runs of the file content.
var words = strings.Fields(`the of and to in is that for it as with was on be by at this from
	have or an are not but which you all were when we there can had has one their will if
	would more so what about out up them some could into other than then its also only
	time new two may after first these any most such where over back like just well should
	func return error nil package import struct type interface range defer select chan map
	string byte int uint64 len make append copy close go var const switch case default break
	continue else true false context reader writer buffer index pack blob tree snapshot
	repository backup restore check prune chunk hash key cipher stream file directory path
	size offset length header footer version format record entry value table column row
	server client request response status config option flag usage manual section example`)

var extensions = []string{".txt", ".go", ".html", ".json", ".c", ".h", ".py", ".md", ".xml", ".dat", ".gz", ".png", ".so", ".conf"}

// layout is the shape of a scale set, computed from its seed and file
// count alone: directories, and for each file its directory, name and
// size. The generator, the mutation and its revert all recompute it, so
// none of them needs to walk millions of files.
type layout struct {
	seed    uint64
	dirs    []string // relative to the set's root; dirs[0] is "."
	weights []float64
	cum     []float64 // cumulative weights, for picking a directory
	files   []fileSpec
}

type fileSpec struct {
	dir  int32
	size int32
}

// newLayout builds the directory tree breadth first: each directory
// above maxDepth gets no children with probability 0.3, else a
// geometric number of them whose mean is chosen so that the tree is
// about maxDepth-1 levels deep at the requested directory count.
func newLayout(seed uint64, nfiles int) *layout {
	rng := rand.New(rand.NewPCG(seed, 0x6c61796f7574))
	ndirs := max(1, nfiles/filesPerDir)
	l := &layout{seed: seed, dirs: []string{"."}}
	depth := []int{0}
	mean := math.Pow(float64(ndirs), 1/float64(maxDepth-1))
	// With probability 0.7 a directory has 1+Geometric(p) children: its
	// mean is 0.7/p, which should be the wanted mean fan-out.
	p := min(0.9, 0.7/max(mean, 1.01))
	queue := []int{0}
	for len(l.dirs) < ndirs {
		if len(queue) == 0 {
			// Every branch ended early: grow again from a random
			// directory that may still have children.
			for {
				i := rng.IntN(len(l.dirs))
				if depth[i] < maxDepth {
					queue = append(queue, i)
					break
				}
			}
		}
		parent := queue[0]
		queue = queue[1:]
		if depth[parent] >= maxDepth {
			continue
		}
		k := 0
		if parent == 0 || rng.Float64() < 0.7 {
			k = 1
			for rng.Float64() > p {
				k++
			}
		}
		for c := 0; c < k && len(l.dirs) < ndirs; c++ {
			name := words[rng.IntN(len(words))] + "-" + strconv.Itoa(c)
			l.dirs = append(l.dirs, filepath.Join(l.dirs[parent], name))
			depth = append(depth, depth[parent]+1)
			queue = append(queue, len(l.dirs)-1)
		}
	}
	l.weights = make([]float64, len(l.dirs))
	l.cum = make([]float64, len(l.dirs))
	total := 0.0
	for i := range l.weights {
		l.weights[i] = math.Exp(rng.NormFloat64() * dirWeightSigma)
		total += l.weights[i]
		l.cum[i] = total
	}
	var histCum [len(sizeHistogram)]int
	n := 0
	for i, c := range sizeHistogram {
		n += c
		histCum[i] = n
	}
	l.files = make([]fileSpec, nfiles)
	for i := range l.files {
		l.files[i] = fileSpec{dir: int32(l.pickDir(rng)), size: int32(drawSize(rng, &histCum))}
	}
	return l
}

func (l *layout) pickDir(rng *rand.Rand) int {
	x := rng.Float64() * l.cum[len(l.cum)-1]
	i, _ := slices.BinarySearch(l.cum, x)
	return min(i, len(l.cum)-1)
}

// drawSize picks a bucket by the histogram, then a size log-uniformly
// inside it.
func drawSize(rng *rand.Rand, histCum *[len(sizeHistogram)]int) int {
	x := rng.IntN(histCum[len(histCum)-1])
	b, _ := slices.BinarySearch(histCum[:], x+1)
	lo := float64(b) / 4
	s := int(float64(minSize) * math.Exp2(lo+rng.Float64()/4))
	return min(max(s, minSize), maxSize)
}

// fileName is file i's name: a word, the index (unique in the set) and
// an extension.
func fileName(i int) string {
	h := uint64(i)*0x9e3779b97f4a7c15 + 1
	return words[h%uint64(len(words))] + "-" + strconv.FormatInt(int64(i), 36) + extensions[(h>>32)%uint64(len(extensions))]
}

func (l *layout) path(i int) string {
	return filepath.Join(l.dirs[l.files[i].dir], fileName(i))
}

// bigName is the large file's path, relative to the set's root.
const bigName = "big.img"

// blockSize is the unit of the big file's content and of its mutation.
const blockSize = 1 << 20

// contentSeed derives a ChaCha8 key from the set's seed and a stream
// identity, so that every file's bytes depend on nothing else.
func contentSeed(seed uint64, kind string, a, b uint64) [32]byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[0:], seed)
	binary.LittleEndian.PutUint64(s[8:], a)
	binary.LittleEndian.PutUint64(s[16:], b)
	copy(s[24:], kind)
	return s
}

// fillContent fills buf with runs of 256 B to 4 KiB, each either random
// bytes or words from the vocabulary (zstd takes the word runs to about a
// third). Every stream is keyed differently, so no two files share a
// chunk: the set is partly compressible and not trivially deduplicated.
func fillContent(buf []byte, key [32]byte) {
	rng := rand.NewChaCha8(key)
	pos := 0
	for pos < len(buf) {
		v := rng.Uint64()
		run := min(256+int(v%3841), len(buf)-pos)
		if v&(1<<40) != 0 {
			_, _ = rng.Read(buf[pos : pos+run])
			pos += run
			continue
		}
		end := pos + run
		for pos < end {
			w := rng.Uint64()
			word := words[w%uint64(len(words))]
			pos += copy(buf[pos:end], word)
			if pos < end {
				sep := byte(' ')
				if (w>>32)%12 == 0 {
					sep = '\n'
				}
				buf[pos] = sep
				pos++
			}
		}
	}
}

// parseSize reads "20GiB", "256MiB", "4096", "1.5GB" and the like.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional unit (KiB, MiB, GiB, KB, MB, GB)", s)
	}
	return int64(v * mult), nil
}
