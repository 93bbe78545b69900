//go:build !unix && !windows

package local

import "os"

// fsyncDir is a no-op where directories cannot be synced.
func fsyncDir(string) error { return nil }

func isNoSpace(error) bool    { return false }
func isReadOnlyFS(error) bool { return false }

func removeFile(name string) error { return os.Remove(name) }

func replaceFile(from, to string) error { return os.Rename(from, to) }
