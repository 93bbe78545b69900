package rest

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

var fuzzSeeds = []string{"https://user@host:8000/repo", "http://127.0.0.1:8000/", "https://u:p@h/a/b", "", "ftp://h/x", "https://[::1]:1/r"}
