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
