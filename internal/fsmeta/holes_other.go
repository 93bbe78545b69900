//go:build !linux

package fsmeta

import (
	"errors"
	"fmt"
	"os"
)

// NextData is not implemented on this platform: it returns an error
// wrapping errors.ErrUnsupported, so callers read the whole file.
func NextData(f *os.File, off int64) (start, end int64, err error) {
	return 0, 0, fmt.Errorf("find data in %s: %w", f.Name(), errors.ErrUnsupported)
}
