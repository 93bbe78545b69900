package restorer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// spillAlign is the alignment of every record in a spill file: a record
// whose last use is read is punched out of the file (where the system
// can), which frees only whole blocks.
const spillAlign = 4096

// spill is a private temporary file holding the plaintext of blobs that
// files still need after they left read-ahead's memory (shared content:
// the same file in several directories). A blob is written there once
// and read back by its later files, so that it is downloaded once however
// many files share it and however little memory read-ahead may use.
//
// The file is made without a name where the system allows it (O_TMPFILE
// on Linux), else created with mode 0600 and unlinked at once; it is in
// the cache directory or the temporary directory, never inside the
// restore target. Its records are checked against their blob IDs when
// read back. It is used under readahead.mu.
type spill struct {
	dirs   []string // where to make the file, in order of preference
	f      *os.File
	name   string // of a file that could not be unlinked when made
	end    int64
	at     map[ID]spillRec
	broken error // set once the file failed: blobs are dropped then, as without it
	warn   func(string)

	written int64 // bytes written (for tests)
}

// spillRec is where a blob's plaintext is in the spill file.
type spillRec struct {
	off int64
	n   int
}

// newSpill returns a spill that makes its file, when first needed, in dir
// ("" for the temporary directory), or in the temporary directory when
// dir is inside target or unusable.
func newSpill(dir, target string, warn func(string)) *spill {
	s := &spill{at: map[ID]spillRec{}, warn: warn}
	if dir != "" && !inside(dir, target) {
		s.dirs = append(s.dirs, dir)
	}
	if tmp := os.TempDir(); !inside(tmp, target) {
		s.dirs = append(s.dirs, tmp)
	}
	return s
}

// inside reports whether dir is target or below it (lexically, on
// absolute paths).
func inside(dir, target string) bool {
	d, err1 := filepath.Abs(dir)
	t, err2 := filepath.Abs(target)
	if err1 != nil || err2 != nil {
		return true // unknown: do not risk it
	}
	rel, err := filepath.Rel(t, d)
	return err == nil && (rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))))
}

// has reports whether blob id is in the file.
func (s *spill) has(id ID) bool {
	_, ok := s.at[id]
	return ok
}

// put writes the plaintext of blob id; false when the file cannot be
// made or written (the blob is then dropped and read again when needed).
func (s *spill) put(id ID, plain []byte) bool {
	if s.broken != nil {
		return false
	}
	if _, ok := s.at[id]; ok {
		return true
	}
	if s.f == nil {
		if err := s.open(); err != nil {
			s.fail(err)
			return false
		}
	}
	off := (s.end + spillAlign - 1) / spillAlign * spillAlign
	if _, err := s.f.WriteAt(plain, off); err != nil {
		s.fail(fmt.Errorf("write restore spill file: %w", err))
		return false
	}
	s.at[id] = spillRec{off: off, n: len(plain)}
	s.end = off + int64(len(plain))
	s.written += int64(len(plain))
	return true
}

// fail marks the file broken and says so once: from then on, blobs that
// leave memory are read from the repository again when needed.
func (s *spill) fail(err error) {
	s.broken = err
	if s.warn != nil {
		s.warn(fmt.Sprintf("%v; blobs that several files share are read from the repository again (more downloads, same result)", err))
	}
}

// get reads the plaintext of blob id into buf[:0]; found is false when the
// file does not hold it. The caller checks the content against id.
func (s *spill) get(id ID, buf []byte) (out []byte, found bool, err error) {
	rec, ok := s.at[id]
	if !ok {
		return nil, false, nil
	}
	if cap(buf) < rec.n {
		buf = make([]byte, rec.n)
	}
	out = buf[:rec.n]
	if _, err := s.f.ReadAt(out, rec.off); err != nil {
		return nil, true, fmt.Errorf("read restore spill file at %d (%d bytes): %w", rec.off, rec.n, err)
	}
	return out, true, nil
}

// drop forgets blob id (its last use is read) and gives its blocks back.
func (s *spill) drop(id ID) {
	rec, ok := s.at[id]
	if !ok {
		return
	}
	delete(s.at, id)
	end := (rec.off + int64(rec.n) + spillAlign - 1) / spillAlign * spillAlign
	punchHole(s.f, rec.off, end-rec.off)
}

// open makes the file in the first directory that allows it.
func (s *spill) open() error {
	var errs []error
	for _, dir := range s.dirs {
		f, name, err := openSpillFile(dir)
		if err == nil {
			s.f, s.name = f, name
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return errors.New("restore spill file: no directory outside the restore target")
	}
	return errors.Join(errs...)
}

// close removes the file.
func (s *spill) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	if s.name != "" {
		if rerr := os.Remove(s.name); err == nil {
			err = rerr
		}
	}
	s.f, s.at = nil, map[ID]spillRec{}
	return err
}

// createUnlinked makes a file of mode 0600 in dir and unlinks it at once,
// so that its content is reachable only through the descriptor. Where a
// file cannot be unlinked while open (Windows), its name is returned, to
// be removed when the restore ends.
func createUnlinked(dir string) (*os.File, string, error) {
	f, err := os.CreateTemp(dir, ".bunker-restore-spill-*")
	if err != nil {
		return nil, "", fmt.Errorf("create restore spill file in %s: %w", dir, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, "", fmt.Errorf("create restore spill file in %s: %w", dir, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		return f, f.Name(), nil
	}
	return f, "", nil
}
