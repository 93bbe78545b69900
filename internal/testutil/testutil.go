// Package testutil holds helpers shared by the end-to-end tests of the
// command line (internal/cli runs it in-process, internal/e2e runs the
// built binary). Only tests import it.
package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ChaCha returns a deterministic random source for seed.
func ChaCha(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	for i := 0; i < 8; i++ {
		s[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(s)
}

// RandBytes returns n pseudo-random bytes from seed.
func RandBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = ChaCha(seed).Read(b)
	return b
}

// Must fails the test on an error.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// WriteFile writes data to path, creating its directory.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	Must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	Must(t, os.WriteFile(path, data, 0o644))
}

// TreeDigest maps every entry below root (relative slash paths) to a
// description of its type and content: "d" for directories, "f:<sha256>"
// for files, "l:<target>" for symlinks, "o:<type>" for anything else.
func TreeDigest(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			out[rel] = "d"
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "l:" + target
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			out[rel] = "f:" + hex.EncodeToString(sum[:])
		default:
			out[rel] = "o:" + d.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("digest %s: %v", root, err)
	}
	return out
}

// DiffDigests describes the differences of two tree digests, sorted.
func DiffDigests(want, got map[string]string) []string {
	var diffs []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, "missing: "+k)
		} else if g != v {
			diffs = append(diffs, fmt.Sprintf("differs: %s (want %.20s, got %.20s)", k, v, g))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "unexpected: "+k)
		}
	}
	slices.Sort(diffs)
	return diffs
}

// JSONLines decodes the JSON-object lines of --json output; other lines
// are skipped.
func JSONLines(stdout string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(stdout, "\n") {
		line = strings.TrimSpace(line)
		var m map[string]any
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// LastMessage returns the last line with the given message_type.
func LastMessage(lines []map[string]any, typ string) (map[string]any, bool) {
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i]["message_type"] == typ {
			return lines[i], true
		}
	}
	return nil, false
}

// Clip shortens long command output for failure messages.
func Clip(s string, max int) string {
	if len(s) > max {
		return s[:max/2] + "\n[...]\n" + s[len(s)-max/2:]
	}
	return s
}

// Num reads a JSON number.
func Num(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// Str reads a JSON string.
func Str(v any) string {
	s, _ := v.(string)
	return s
}

// DecodeMessages decodes the JSON lines of output whose message_type is
// typ into out, a pointer to a slice (e.g. the "snapshot" lines of
// snapshots --json).
func DecodeMessages(t testing.TB, output, typ string, out any) {
	t.Helper()
	ms := []map[string]any{}
	for _, m := range JSONLines(output) {
		if m["message_type"] == typ {
			ms = append(ms, m)
		}
	}
	b, err := json.Marshal(ms)
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		t.Fatalf("decode %s lines: %v\n%s", typ, err, output)
	}
}
