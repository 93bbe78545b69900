//go:build linux

package fsmeta

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNextData: the data regions of a sparse file, block-aligned, and
// the file's size past the last data or past the end.
func TestNextData(t *testing.T) {
	const block = 4096
	p := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(p)
	must(t, err)
	defer f.Close()
	must(t, f.Truncate(64*block))
	for _, off := range []int64{10*block + 5, 30 * block, 31 * block} {
		_, err := f.WriteAt([]byte("data"), off)
		must(t, err)
	}
	var st unix.Stat_t
	must(t, unix.Fstat(int(f.Fd()), &st))
	if st.Blocks*512 >= 64*block {
		t.Skipf("%s: %d bytes allocated for %d: this filesystem keeps no holes", p, st.Blocks*512, 64*block)
	}
	for _, c := range []struct{ off, start, end int64 }{
		{0, 10 * block, 11 * block},
		{10*block + 100, 10*block + 100, 11 * block},
		{11 * block, 30 * block, 32 * block},
		{32 * block, 64 * block, 64 * block},  // only a hole to the end
		{64 * block, 64 * block, 64 * block},  // at the end
		{100 * block, 64 * block, 64 * block}, // past the end
	} {
		start, end, err := NextData(f, c.off)
		if err != nil {
			t.Fatalf("NextData(%d): %v", c.off, err)
		}
		if start != c.start || end != c.end {
			t.Errorf("NextData(%d) = %d, %d; want %d, %d", c.off, start, end, c.start, c.end)
		}
	}
}
