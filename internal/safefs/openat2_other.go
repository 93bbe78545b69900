//go:build darwin

package safefs

// openat2Dir: only Linux has openat2; the caller walks.
func openat2Dir(int, string) (int, error, bool) { return -1, nil, false }
