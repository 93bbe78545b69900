//go:build !linux && !darwin

package fsmeta

import (
	"os"
	"path/filepath"
)

// RemoveAllAt removes the entry name of the open directory dir and
// everything below it. On this platform it goes through the joined path.
func RemoveAllAt(dir *os.File, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(dir.Name(), name))
}
