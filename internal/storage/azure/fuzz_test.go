package azure

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

var fuzzSeeds = []string{"container:/prefix", "container", "c:/a/b", "", ":", "UPPER:/x"}
