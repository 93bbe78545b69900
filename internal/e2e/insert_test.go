package e2e

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestInsertNearStart is acceptance criterion 5: after 100 bytes are
// inserted near the start of a 500 MB file, the next backup stores less
// than 3 MB (content-defined chunking resynchronises after a chunk or two).
func TestInsertNearStart(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 1.5 GB; skipped with -short")
	}
	const size = 500_000_000
	const insertAt = 1000
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	big := filepath.Join(src, "big.bin")
	writeRandomFile(t, big, 20240501, size)
	r := initRepo(t)

	first := r.mustRun("--json", "backup", src).Message(t, "summary")
	t.Logf("first backup: %d bytes added (%d packed) in %.1fs", num(first["data_added"]), num(first["data_added_packed"]), first["duration_seconds"])
	if num(first["data_added"]) < size {
		t.Fatalf("first backup added only %d bytes of %d", num(first["data_added"]), size)
	}

	// Insert 100 bytes at offset 1000: write a new file and move it over.
	tmp := filepath.Join(dir, "big.new")
	in, err := os.Open(big)
	must(t, err)
	out, err := os.Create(tmp)
	must(t, err)
	_, err = io.CopyN(out, in, insertAt)
	must(t, err)
	_, err = out.Write(randBytes(7, 100))
	must(t, err)
	_, err = io.Copy(out, in)
	must(t, err)
	must(t, in.Close())
	must(t, out.Close())
	must(t, os.Rename(tmp, big))

	second := r.mustRun("--json", "backup", src).Message(t, "summary")
	added, packed := num(second["data_added"]), num(second["data_added_packed"])
	t.Logf("after inserting 100 bytes at offset %d: %d bytes added (%d packed, %d blobs) in %.1fs",
		insertAt, added, packed, num(second["data_blobs_added"]), second["duration_seconds"])
	if num(second["bytes_read"]) != size+100 {
		t.Errorf("the second backup read %d bytes, want the whole changed file (%d)", num(second["bytes_read"]), size+100)
	}
	if packed >= 3_000_000 {
		t.Errorf("the second backup stored %d bytes (packed), want < 3 MB", packed)
	}
	// The new snapshot restores the changed file exactly (dump compares
	// without writing another 500 MB to disk).
	h := r.command(t.Context(), "dump", "latest", big)
	pipe, err := h.StdoutPipe()
	must(t, err)
	must(t, h.Start())
	f, err := os.Open(big)
	must(t, err)
	defer f.Close()
	same, err := sameStream(pipe, f)
	if werr := h.Wait(); werr != nil || err != nil {
		t.Fatalf("dump: %v / %v", werr, err)
	}
	if !same {
		t.Fatalf("dump of the changed file differs from the file")
	}
}

// sameStream compares two readers to the end.
func sameStream(a, b io.Reader) (bool, error) {
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || string(ba[:na]) != string(bb[:nb]) {
			return false, nil
		}
		if ea == io.EOF || ea == io.ErrUnexpectedEOF {
			return eb == io.EOF || eb == io.ErrUnexpectedEOF, nil
		}
		if ea != nil {
			return false, ea
		}
		if eb != nil {
			return false, eb
		}
	}
}
