//go:build !linux && !darwin

package fsmeta

import (
	"os"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// ReadXattrsFile returns no attributes where Bunker does not read them.
func ReadXattrsFile(*os.File) ([]tree.Xattr, error) { return nil, nil }

// ReadXattrsAt returns no attributes where Bunker does not read them.
func ReadXattrsAt(*os.File, string) ([]tree.Xattr, error) { return nil, nil }
