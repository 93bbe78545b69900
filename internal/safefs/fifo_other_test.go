//go:build !unix

package safefs_test

var mkfifo func(string) error
