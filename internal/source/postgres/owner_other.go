//go:build !unix

package postgres

import "os"

// fileOwner: no owners to keep here.
func fileOwner(fi os.FileInfo) (int, int) { return -1, -1 }
