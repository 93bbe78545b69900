package exclude

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

type matchCase struct {
	path  string
	isDir bool
	want  bool
}

func TestExcluded(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		cases []matchCase
	}{
		{"extension at any depth", Options{Patterns: []string{"*.go"}}, []matchCase{
			{"/home/user/main.go", false, true},
			{"/main.go", false, true},
			{"/home/user/main.c", false, false},
			{"/home/user/main.go.bak", false, false},
			{"/home/user/pkg.go/file.c", false, true}, // below a matching directory
			{"/", true, false},
		}},
		{"name at any depth", Options{Patterns: []string{"foo"}}, []matchCase{
			{"/foo", false, true},
			{"/a/foo", true, true},
			{"/a/foo/bar/baz", false, true},
			{"/a/foobar", false, false},
			{"/a/xfoo/bar", false, false},
		}},
		{"several components unanchored", Options{Patterns: []string{"foo/bar"}}, []matchCase{
			{"/x/foo/bar", false, true},
			{"/foo/bar", false, true},
			{"/x/foo/bar/baz", false, true},
			{"/x/foo/baz/bar", false, false},
			{"/x/bar", false, false},
		}},
		{"anchored", Options{Patterns: []string{"/home/user"}}, []matchCase{
			{"/home/user", true, true},
			{"/home/user/x/y", false, true},
			{"/srv/home/user", true, false},
			{"/home/username", true, false},
			{"/home", true, false},
			{"home/user", true, false}, // relative paths never match anchored patterns
		}},
		{"anchored glob", Options{Patterns: []string{"/home/*/.cache"}}, []matchCase{
			{"/home/alice/.cache", true, true},
			{"/home/alice/.cache/f", false, true},
			{"/home/alice/x/.cache", true, false},
			{"/srv/home/alice/.cache", true, false},
		}},
		{"double star in the middle", Options{Patterns: []string{"/home/**/cache"}}, []matchCase{
			{"/home/cache", true, true}, // ** matches zero directories
			{"/home/a/cache", true, true},
			{"/home/a/b/c/cache/x", false, true},
			{"/srv/home/a/cache", true, false},
			{"/home/a/b", true, false},
		}},
		{"double star at the end", Options{Patterns: []string{"/home/**"}}, []matchCase{
			{"/home", true, true},
			{"/home/a/b", false, true},
			{"/homes", true, false},
			{"/", true, false},
		}},
		{"double star at the start", Options{Patterns: []string{"**/cache"}}, []matchCase{
			{"/cache", true, true},
			{"/a/b/cache", true, true},
			{"/a/b/cachex", true, false},
		}},
		{"double star alone", Options{Patterns: []string{"**"}}, []matchCase{
			{"/anything", false, true},
			{"/a/b", false, true},
			{"/", true, false},
		}},
		{"root", Options{Patterns: []string{"/"}}, []matchCase{
			{"/", true, true},
			{"/x", false, true},
			{"x", false, false},
		}},
		{"two double stars", Options{Patterns: []string{"a/**/b/**/c"}}, []matchCase{
			{"/a/b/c", false, true},
			{"/x/a/1/2/b/3/c", false, true},
			{"/a/c/b", false, false},
			{"/a/b", true, false},
		}},
		{"question mark", Options{Patterns: []string{"?"}}, []matchCase{
			{"/a", false, true},
			{"/ab", false, false},
			{"/ab/c", false, true},
			{"/é", false, true}, // one rune
		}},
		{"character classes", Options{Patterns: []string{"[abc].txt", "[^x-z]9", "[!]8"}}, []matchCase{
			{"/d/b.txt", false, true},
			{"/d/d.txt", false, false},
			{"/d/a9", false, true},
			{"/d/y9", false, false},
			{"/d/!8", false, true}, // path.Match negates with ^; ! is a plain character
			{"/d/a8", false, false},
		}},
		{"escaped star", Options{Patterns: []string{`\*`}}, []matchCase{
			{"/x/*", false, true},
			{"/x/a", false, false},
		}},
		{"directory only", Options{Patterns: []string{"build/"}}, []matchCase{
			{"/src/build", true, true},
			{"/src/build", false, false},
			{"/src/build/out.o", false, true},
		}},
		{"cleaned patterns", Options{Patterns: []string{"./foo", "bar//baz", "/home/user/../other"}}, []matchCase{
			{"/x/foo", false, true},
			{"/x/bar/baz", false, true},
			{"/home/other/f", false, true},
			{"/home/user/f", false, false},
		}},
		{"unclean path", Options{Patterns: []string{"/a/b"}}, []matchCase{
			{"//a//b/", true, true},
		}},
		{"non-UTF-8", Options{Patterns: []string{"\xff*", "/x/\xfe"}}, []matchCase{
			{"/d/\xff\xfe.bin", false, true},
			{"/x/\xfe", false, true},
			{"/x/\xfd", false, false},
		}},
		{"relative path", Options{Patterns: []string{"foo"}}, []matchCase{
			{"a/foo", false, true},
			{"foo", false, true},
		}},
		{"negation", Options{Patterns: []string{"*.log", "!important.log"}}, []matchCase{
			{"/x/a.log", false, true},
			{"/x/important.log", false, false},
		}},
		{"later patterns win", Options{Patterns: []string{"!important.log", "*.log"}}, []matchCase{
			{"/x/important.log", false, true},
		}},
		{"exclude everything but one directory", Options{Patterns: []string{"/home/*", "!/home/user"}}, []matchCase{
			{"/home", true, false},
			{"/home/user", true, false},
			{"/home/user/docs/f", false, false},
			{"/home/other", true, true},
			{"/home/other/f", false, true},
		}},
		{"negation then exclusion again", Options{Patterns: []string{"/data", "!/data/keep", "/data/keep/tmp"}}, []matchCase{
			{"/data/x", false, true},
			{"/data/keep/a", false, false},
			{"/data/keep/tmp", true, true},
		}},
		{"directory-only negation", Options{Patterns: []string{"*", "!keep/"}}, []matchCase{
			{"/keep", true, false},
			{"/keep", false, true},
		}},
		{"case-insensitive", Options{IPatterns: []string{"*.JPG", "/Home/USER"}}, []matchCase{
			{"/p/a.jpg", false, true},
			{"/p/A.Jpg", false, true},
			{"/home/user/x", false, true},
			{"/p/a.png", false, false},
		}},
		{"case-sensitive stays sensitive", Options{Patterns: []string{"*.JPG"}}, []matchCase{
			{"/p/a.jpg", false, false},
			{"/p/a.JPG", false, true},
		}},
		{"case folding beyond ASCII", Options{IPatterns: []string{"ÄRGER", "\xffA"}}, []matchCase{
			{"/x/ärger", false, true},
			{"/x/ÄrGeR", false, true},
			{"/x/\xffa", false, true},
			{"/x/\xfea", false, false}, // invalid bytes are not all the same
		}},
		{"lists are separate", Options{Patterns: []string{"*.log"}, IPatterns: []string{"!keep.log"}}, []matchCase{
			{"/x/keep.log", false, true},
		}},
		{"insensitive exclusion beats sensitive negation", Options{Patterns: []string{"!keep.log"}, IPatterns: []string{"*.LOG"}}, []matchCase{
			{"/x/keep.log", false, true},
		}},
		{"no patterns", Options{}, []matchCase{
			{"/x", false, false},
		}},
		{"empty patterns are ignored", Options{Patterns: []string{""}}, []matchCase{
			{"/x", false, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tt.cases {
				if got := m.Excluded(c.path, c.isDir); got != c.want {
					t.Errorf("Excluded(%q, dir=%v) = %v, want %v", c.path, c.isDir, got, c.want)
				}
			}
		})
	}
}

func TestInvalidPatterns(t *testing.T) {
	tests := []struct {
		opts Options
		want string // must appear in the error
	}{
		{Options{Patterns: []string{"["}}, `"["`},
		{Options{Patterns: []string{"ok", "a/[b"}}, `"a/[b"`},
		{Options{Patterns: []string{`foo\`}}, `"foo\\"`},
		{Options{Patterns: []string{"!"}}, `"!"`},
		{Options{IPatterns: []string{"[z-a"}}, `"[z-a"`},
		{Options{Patterns: []string{strings.Repeat("a/", 300)}}, "components"},
		{Options{IfPresent: []string{""}}, "marker"},
		{Options{IfPresent: []string{":header"}}, "marker"},
		{Options{IfPresent: []string{"a/b"}}, `"a/b"`},
		{Options{IfPresent: []string{".."}}, "marker"},
		{Options{PatternFiles: []string{"/nonexistent/excludes"}}, "/nonexistent/excludes"},
	}
	for _, tt := range tests {
		_, err := New(tt.opts)
		if err == nil {
			t.Errorf("New(%+v) succeeded", tt.opts)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) error %q does not mention %s", tt.opts, err, tt.want)
		}
	}
}

func TestPatternFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "excludes")
	content := "\xef\xbb\xbf# comment\n\n   *.tmp   \r\n\t/var/cache\n  # indented comment\n!keep.tmp\n$HOME\n"
	if err := os.WriteFile(good, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	iFile := filepath.Join(dir, "iexcludes")
	if err := os.WriteFile(iFile, []byte("*.BAK\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{Patterns: []string{"first"}, PatternFiles: []string{good}, IPatternFiles: []string{iFile}})
	if err != nil {
		t.Fatal(err)
	}
	var originals []string
	for _, p := range m.sensitive {
		originals = append(originals, p.original)
	}
	if got, want := strings.Join(originals, "|"), "first|*.tmp|/var/cache|!keep.tmp|$HOME"; got != want {
		t.Errorf("patterns = %s, want %s", got, want)
	}
	for _, c := range []matchCase{
		{"/x/a.tmp", false, true},
		{"/x/keep.tmp", false, false},
		{"/var/cache/x", false, true},
		{"/x/$HOME", false, true}, // kept literal, not expanded
		{"/x/a.bak", false, true},
		{"/x/first", false, true},
	} {
		if got := m.Excluded(c.path, c.isDir); got != c.want {
			t.Errorf("Excluded(%q) = %v, want %v", c.path, got, c.want)
		}
	}

	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("ok\n\n[broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = New(Options{PatternFiles: []string{bad}})
	if err == nil || !strings.Contains(err.Error(), bad+":3") || !strings.Contains(err.Error(), "[broken") {
		t.Errorf("bad pattern file: error %v, want one naming %s:3 and the pattern", err, bad)
	}
}

func TestMarkerNames(t *testing.T) {
	m, err := New(Options{IfPresent: []string{".nobackup", "TAG:hdr"}, ExcludeCaches: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		want bool
	}{{".nobackup", true}, {"TAG", true}, {"TAG:hdr", false}, {CacheDirTagName, true}, {"other", false}} {
		if got := m.IsMarkerName(tt.name); got != tt.want {
			t.Errorf("IsMarkerName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !m.HasMarkers() {
		t.Error("HasMarkers = false")
	}
	if m, _ := New(Options{Patterns: []string{"x"}}); m.HasMarkers() {
		t.Error("HasMarkers without markers = true")
	}
}

func TestFoldCase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"abc", "abc"},
		{"ABC", "abc"},
		{"ÄÖÜ", "äöü"},
		{"\xffA\xfe", "\xffa\xfe"},
		{"A\xe2\x82", "a\xe2\x82"}, // truncated UTF-8 sequence kept
	}
	for _, tt := range tests {
		if got := foldCase(tt.in); got != tt.want {
			t.Errorf("foldCase(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// refMatch is an independent model of restic's matching: every ** is
// expanded into zero or more * components, and the result must match
// consecutive components of the path, starting at the root for an
// anchored pattern and anywhere after it otherwise.
func refMatch(pattern, p string) bool {
	parts := strings.Split(path.Clean(pattern), "/")
	if parts[0] == "" {
		parts[0] = "/"
	}
	if len(parts) == 2 && parts[0] == "/" && parts[1] == "" {
		parts = parts[:1] // "/"
	}
	strs := strings.Split(p, "/")
	if strs[0] == "" {
		strs[0] = "/"
	}
	if p == "/" {
		strs = []string{"/"}
	}
	return refExpand(parts, strs)
}

func refExpand(parts, strs []string) bool {
	for i, pt := range parts {
		if pt != "**" {
			continue
		}
		for k := 0; k <= len(strs); k++ {
			exp := append(append(append([]string{}, parts[:i]...), repeat("*", k)...), parts[i+1:]...)
			if refExpand(exp, strs) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 || len(parts) > len(strs) {
		return false
	}
	minOff, maxOff := 0, len(strs)-len(parts)
	if parts[0] == "/" {
		maxOff = 0
	} else if strs[0] == "/" {
		minOff = 1
	}
outer:
	for off := minOff; off <= maxOff; off++ {
		for i, pt := range parts {
			if ok, err := path.Match(pt, strs[off+i]); !ok || err != nil {
				continue outer
			}
		}
		return true
	}
	return false
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestMatchAgainstModel(t *testing.T) {
	patterns := []string{"*", "a", "/a", "a/b", "/a/*", "**", "/**", "a/**", "**/b", "/a/**/b", "a/**/**/c",
		"*/b", "/*/*", "?/b", "[ab]", "/", "a/**/b/**/c", "/**/a"}
	paths := []string{"/", "/a", "/b", "/a/b", "/b/a", "/a/b/c", "/x/a/b", "/a/x/b", "/a/x/y/b/c", "/c/b/a", "a", "a/b", "b/a/c"}
	for _, pat := range patterns {
		m, err := New(Options{Patterns: []string{pat}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			want := refMatch(pat, p)
			if got := m.Excluded(p, true); got != want {
				t.Errorf("pattern %q, path %q: Excluded = %v, model says %v", pat, p, got, want)
			}
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("*.go", "/home/user/main.go", false, false)
	f.Add("/home/**/cache", "/home/a/b/cache/x", true, false)
	f.Add("!a/[b-c]?/**", "/x/a/bc/d", false, true)
	f.Add("build/", "/src/build", true, false)
	f.Add("\xff*", "/\xff\xfe", false, true)
	f.Add("**/**/**", "/a/b/c/d/e", true, false)
	f.Fuzz(func(t *testing.T, pattern, p string, isDir, fold bool) {
		opts := Options{Patterns: []string{pattern}}
		if fold {
			opts = Options{IPatterns: []string{pattern}}
		}
		m, err := New(opts)
		if err != nil {
			return
		}
		got := m.Excluded(p, isDir)
		_ = m.Excluded(p+"/", !isDir)

		negated := strings.HasPrefix(pattern, "!")
		// A non-negated pattern that excludes a directory excludes what is
		// below it.
		if !negated && m.Excluded(p, true) && !m.Excluded(p+"/child", false) {
			t.Errorf("pattern %q excludes directory %q but not %q", pattern, p, p+"/child")
		}
		// Without the directory-only extension, the result is restic's.
		if fold || negated || strings.HasSuffix(pattern, "/") || !strings.HasPrefix(p, "/") || path.Clean(p) != p ||
			strings.Count(p, "/") > 8 || strings.Count(pattern, "**") > 3 || strings.Count(pattern, "/") > 12 {
			return
		}
		if want := refMatch(pattern, p); got != want {
			t.Errorf("pattern %q, path %q: Excluded = %v, restic model says %v", pattern, p, got, want)
		}
	})
}
