package sftp

import "testing"

// FuzzParseConfig: any location and environment is parsed or refused
// with an error, never a panic.
func FuzzParseConfig(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, loc, env string) {
		_, _ = ParseConfig(loc, func(string) string { return env })
	})
}

var fuzzSeeds = []string{"user@host:/srv/repo", "host:rel/path", "user@[::1]:/p", "sftp://user@host:2222/~/p", "", "@:", "sftp://%zz@h/p"}
