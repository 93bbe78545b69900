package fsmeta

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// NextData returns the first region of data of the regular file f at or
// after off, as lseek(2) SEEK_DATA and SEEK_HOLE find it: data begins at
// start (>= off) and the next hole, or the end of the file, at end. When
// only a hole follows off, or off is at or past the end of the file,
// start and end are both the file's size (which is then below off if the
// file is shorter). Filesystems without holes report the whole file as
// data; unwritten (preallocated) extents count as holes, since they read
// as zeros. f's offset is left unspecified.
//
// An error means nothing is known (a filesystem without SEEK_DATA answers
// EINVAL): the caller must read the file.
func NextData(f *os.File, off int64) (start, end int64, err error) {
	start, err = f.Seek(off, unix.SEEK_DATA)
	if errors.Is(err, unix.ENXIO) {
		// No data at or after off: the rest is a hole, or off is past
		// the end.
		size, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return 0, 0, fmt.Errorf("find data in %s: size: %w", f.Name(), err)
		}
		return size, size, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("find data in %s at offset %d: %w", f.Name(), off, err)
	}
	end, err = f.Seek(start, unix.SEEK_HOLE)
	if err != nil {
		return 0, 0, fmt.Errorf("find the hole after offset %d of %s: %w", start, f.Name(), err)
	}
	if end <= start {
		// The file shrank between the two calls: nothing is known.
		return 0, 0, fmt.Errorf("find data in %s: data at %d but a hole at %d (the file changed)", f.Name(), start, end)
	}
	return start, end, nil
}
