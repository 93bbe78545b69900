//go:build linux

package fsmeta

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFileWriterSparse(t *testing.T) {
	const (
		size  = 64 << 20
		chunk = 1 << 20
	)
	// Data in chunks 0, 17 and 40 (a short last piece of data inside
	// chunk 40); everything else, including the end, is a hole.
	data := map[int][]byte{
		0:  bytes.Repeat([]byte{0xaa}, chunk),
		17: bytes.Repeat([]byte{0x55}, chunk),
		40: append(make([]byte, chunk-3), 1, 2, 3),
	}
	want := sha256.New()
	var chunks []int
	for i := range size / chunk {
		chunks = append(chunks, i)
		if b, ok := data[i]; ok {
			want.Write(b)
		} else {
			want.Write(make([]byte, chunk))
		}
	}
	rand.Shuffle(len(chunks), func(i, j int) { chunks[i], chunks[j] = chunks[j], chunks[i] })

	p := filepath.Join(t.TempDir(), "sparse")
	w, err := CreateFileWriter(p, size)
	must(t, err)
	// Several goroutines fill the file in random order.
	var wg sync.WaitGroup
	work := make(chan int)
	for range 4 {
		wg.Go(func() {
			zero := make([]byte, chunk)
			for i := range work {
				b, ok := data[i]
				if !ok {
					b = zero
				}
				if _, err := w.WriteAt(b, int64(i)*chunk); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for _, i := range chunks {
		work <- i
	}
	close(work)
	wg.Wait()
	must(t, w.Close())

	var st unix.Stat_t
	must(t, unix.Stat(p, &st))
	if st.Size != size {
		t.Fatalf("size %d, want %d", st.Size, size)
	}
	used := st.Blocks * 512
	t.Logf("%d bytes allocated for a %d-byte file with 3 MiB of data", used, int64(size))
	if used > 8<<20 {
		t.Errorf("%d bytes allocated for %d bytes with 3 MiB of data: not sparse", used, int64(size))
	}
	b, err := os.ReadFile(p)
	must(t, err)
	if got := sha256.Sum256(b); !bytes.Equal(got[:], want.Sum(nil)) {
		t.Error("content differs")
	}
	// The trailing hole exists: the last data ends in chunk 40.
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	if off, err := f.Seek(41*chunk, unix.SEEK_DATA); err == nil {
		t.Errorf("data found at %d after the last data chunk", off)
	}
}

// TestFileWriterHolesInsideChunks: zero runs inside a chunk become holes
// at 4 KiB granularity. A 50 MB file with one 6-byte write in the middle
// of a 1 MiB chunk (issue 18's case) keeps at most two blocks allocated,
// and chunks that do not start on a block boundary keep their bytes.
func TestFileWriterHolesInsideChunks(t *testing.T) {
	const size = 50_000_000
	p := filepath.Join(t.TempDir(), "vm.img")
	w, err := CreateFileWriter(p, size)
	must(t, err)
	want := make([]byte, size)
	// Chunks of odd sizes, so that their boundaries fall inside blocks.
	at := 25_000_000 + 12345
	copy(want[at:], "hello!")
	// A second, unaligned run of data straddling two chunks.
	for i := 40_000_000 - 3000; i < 40_000_000+5000; i++ {
		want[i] = byte(i%251 + 1)
	}
	for off := 0; off < size; {
		n := min(size-off, 1_048_576+off%7919)
		if _, err := w.WriteAt(want[off:off+n], int64(off)); err != nil {
			t.Fatal(err)
		}
		off += n
	}
	must(t, w.Close())
	var st unix.Stat_t
	must(t, unix.Stat(p, &st))
	used := st.Blocks * 512
	t.Logf("%d bytes allocated for a %d-byte file with 8,006 bytes of data", used, int64(size))
	// The 6 bytes take one block, the 8,000-byte run at most three.
	if used > 4*4096 {
		t.Errorf("%d bytes allocated: holes are not punched at 4 KiB inside chunks", used)
	}
	got, err := os.ReadFile(p)
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Error("content differs")
	}
}
