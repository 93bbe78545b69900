package restserver

import (
	"strings"
	"testing"
)

// FuzzParseRange: any Range header is parsed or refused, never a panic,
// and an accepted range is not negative.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-", "bytes=0-9", "bytes=5-4", "bytes=-5", "bytes=9223372036854775807-", "bytes=0-1,2-3", "items=0-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		off, n, err := parseRange(v)
		if err == nil && (off < 0 || n < 0) {
			t.Fatalf("parseRange(%q) = %d, %d", v, off, n)
		}
	})
}

// FuzzParseHtpasswd: any htpasswd file is loaded or refused with an
// error, never a panic.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add("alice:$2y$05$abcdefghijklmnopqrstuu5Ez1b1cYQkFJQn1fDjq8xS6RM4cb8ai\n")
	f.Add("bob:{SHA}abc\n# comment\n\n")
	f.Add(":::\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseHtpasswd(strings.NewReader(s))
	})
}
