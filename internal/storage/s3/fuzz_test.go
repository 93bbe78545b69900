package s3

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

var fuzzSeeds = []string{"https://s3.amazonaws.com/bucket/prefix", "http://127.0.0.1:9000/b/p?region=x&part-size=5MiB", "host/bucket", "https://h/b/p?sse=aws:kms&sse-kms-key-id=k", "", "https://[::1]:9/b"}
