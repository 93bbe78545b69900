//go:build !unix

package state

import "os"

// unlock is a no-op where bbolt's lock goes away with the file handle.
func unlock(*os.File) {}
