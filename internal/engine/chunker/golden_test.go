package chunker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt from the current implementation")

const goldenFile = "testdata/golden.txt"

// goldenSeed is the gear seed of the golden cases.
func goldenSeed() [32]byte {
	var s [32]byte
	copy(s[:], "bunker chunker golden seed v1...")
	return s
}

// goldenStream returns n bytes of the ChaCha8 stream keyed by name. Only
// the raw stream is used (not math/rand/v2's derived methods, whose
// algorithms may change), so the inputs are fixed forever.
func goldenStream(name string, n int) []byte {
	return randomBytes(name, n)
}

// goldenZeroRuns alternates random blocks and zero runs whose lengths come
// from the raw ChaCha8 stream.
func goldenZeroRuns(name string, n int) []byte {
	src := newRand(name)
	var w [8]byte
	next := func(limit int) int {
		_, _ = src.Read(w[:])
		return int(binary.LittleEndian.Uint64(w[:]) % uint64(limit))
	}
	b := make([]byte, 0, n)
	for len(b) < n {
		seg := make([]byte, 1+next(64<<10))
		_, _ = src.Read(seg)
		b = append(b, seg...)
		b = append(b, make([]byte, 1+next(4<<20))...)
	}
	return b[:n]
}

// goldenCases are the pinned inputs. Never change one: add a new case.
func goldenCases() []struct {
	name string
	p    Params
	data func() []byte
} {
	seed := goldenSeed()
	small := smallParams(seed)
	return []struct {
		name string
		p    Params
		data func() []byte
	}{
		{"default/chacha8-48MiB", DefaultParams(seed), func() []byte { return goldenStream("golden random", 48<<20) }},
		{"default/pgbench-24MiB", DefaultParams(seed), func() []byte { return pgbenchDump(24 << 20) }},
		{"default/zero-runs-40MiB", DefaultParams(seed), func() []byte { return goldenZeroRuns("golden zero runs", 40<<20) }},
		{"default/zeros-20MiB", DefaultParams(seed), func() []byte { return make([]byte, 20<<20) }},
		{"small/chacha8-256KiB", small, func() []byte { return goldenStream("golden small", 256<<10) }},
		{"small/periodic-100KiB", small, func() []byte { return bytes.Repeat(goldenStream("golden period", 1000), 100) }},
		{"small/pgbench-64KiB", small, func() []byte { return pgbenchDump(64 << 10) }},
	}
}

// TestGolden pins chunk boundaries, which are part of the repository
// format, and the gear table of the golden seed. If this fails, the change
// breaks deduplication against existing repositories: do not -update
// unless a new format version is intended.
func TestGolden(t *testing.T) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Chunk lengths pinned by TestGolden (go test -run TestGolden -update rewrites it).\n")
	fmt.Fprintf(&sb, "# Seed %q.\n", goldenSeed())
	tab := NewTable(goldenSeed())
	for i := 0; i < 256; i += 4 {
		fmt.Fprintf(&sb, "gear %3d %#016x %#016x %#016x %#016x\n", i, tab.gear[i], tab.gear[i+1], tab.gear[i+2], tab.gear[i+3])
	}
	for _, gc := range goldenCases() {
		lens := chunkLens(t, NewWithTable(bytes.NewReader(gc.data()), gc.p, tab))
		fmt.Fprintf(&sb, "case %s %v %d chunks\n", gc.name, gc.p, len(lens))
		for i := 0; i < len(lens); i += 12 {
			sb.WriteString("  ")
			for _, n := range lens[i:min(i+12, len(lens))] {
				sb.WriteString(" " + strconv.Itoa(n))
			}
			sb.WriteString("\n")
		}
	}
	got := sb.String()
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("read golden file: %v (run go test -run TestGolden -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("chunk boundaries or gear table differ from %s (first difference: %s); "+
			"this changes the repository format", goldenFile, firstDiff(got, string(want)))
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want string) string {
	g := bufio.NewScanner(strings.NewReader(got))
	w := bufio.NewScanner(strings.NewReader(want))
	for line := 1; ; line++ {
		gok, wok := g.Scan(), w.Scan()
		if !gok && !wok {
			return "none"
		}
		if gok != wok || g.Text() != w.Text() {
			return fmt.Sprintf("line %d: got %q, want %q", line, g.Text(), w.Text())
		}
	}
}

// TestGoldenInputsAreReference checks the golden cases against the
// reference implementation too, so that -update cannot pin a bug of the
// optimized code.
func TestGoldenInputsAreReference(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow; TestGolden still checks the pinned lengths")
	}
	tab := NewTable(goldenSeed())
	for _, gc := range goldenCases() {
		data := gc.data()
		got := chunkLens(t, NewWithTable(bytes.NewReader(data), gc.p, tab))
		if want := refChunkLens(tab, gc.p, data); !slices.Equal(got, want) {
			t.Errorf("%s: chunker and reference disagree", gc.name)
		}
	}
}
