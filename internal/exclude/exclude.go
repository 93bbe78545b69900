package exclude

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bunkerbackup/bunker/internal/fsmeta"
)

// The CACHEDIR.TAG marker of the Cache Directory Tagging Specification.
const (
	CacheDirTagName      = "CACHEDIR.TAG"
	CacheDirTagSignature = "Signature: 8a477f597d28d172789f06886806bc55"
)

// maxParts limits the number of components of one pattern, which keeps
// the matcher's state in a fixed-size bit set.
const maxParts = 255

// Options say what to exclude. See the package documentation for the
// pattern syntax.
type Options struct {
	// Patterns are case-sensitive exclude patterns.
	Patterns []string
	// IPatterns are case-insensitive exclude patterns.
	IPatterns []string
	// PatternFiles name files of case-sensitive patterns, one per line;
	// their patterns come after Patterns.
	PatternFiles []string
	// IPatternFiles name files of case-insensitive patterns; their
	// patterns come after IPatterns.
	IPatternFiles []string
	// IfPresent lists marker files as name or name:header; a directory
	// holding one has its contents excluded.
	IfPresent []string
	// ExcludeCaches is IfPresent CACHEDIR.TAG with its standard signature.
	ExcludeCaches bool
}

// Matcher decides whether paths are excluded. It is immutable after New and
// safe for concurrent use.
type Matcher struct {
	sensitive   []pattern
	insensitive []pattern
	markers     []marker
}

type pattern struct {
	original string
	negated  bool
	anchored bool // starts with "/": matches from the root only
	dirOnly  bool // ends with "/": the last component must be a directory
	parts    []part
}

type part struct {
	glob    string
	literal bool // no glob metacharacters: compare with ==
	any     bool // "**"
}

type marker struct {
	name   string
	header string
}

// New builds a Matcher. An invalid pattern or marker, or an unreadable
// pattern file, is an error that names it.
func New(opts Options) (*Matcher, error) {
	m := &Matcher{}
	var err error
	if m.sensitive, err = parseList(opts.Patterns, opts.PatternFiles, false); err != nil {
		return nil, err
	}
	if m.insensitive, err = parseList(opts.IPatterns, opts.IPatternFiles, true); err != nil {
		return nil, err
	}
	for _, spec := range opts.IfPresent {
		mk, err := parseMarker(spec)
		if err != nil {
			return nil, err
		}
		m.markers = append(m.markers, mk)
	}
	if opts.ExcludeCaches {
		m.markers = append(m.markers, marker{name: CacheDirTagName, header: CacheDirTagSignature})
	}
	return m, nil
}

func parseList(patterns, files []string, fold bool) ([]pattern, error) {
	var out []pattern
	for _, s := range patterns {
		if s == "" {
			continue
		}
		p, err := parsePattern(s, fold)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	for _, name := range files {
		ps, err := readPatternFile(name, fold)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

func readPatternFile(name string, fold bool) ([]pattern, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read exclude pattern file: %w", err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	var out []pattern
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		p, err := parsePattern(s, fold)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read exclude pattern file %q: %w", name, err)
	}
	return out, nil
}

func parsePattern(s string, fold bool) (pattern, error) {
	p := pattern{original: s}
	rest := s
	if strings.HasPrefix(rest, "!") {
		p.negated = true
		rest = rest[1:]
		if rest == "" {
			return p, fmt.Errorf("invalid exclude pattern %q: nothing after '!'", s)
		}
	}
	if filepath.Separator != '/' {
		rest = filepath.ToSlash(rest)
	}
	if fold {
		rest = foldCase(rest)
	}
	p.dirOnly = len(rest) > 1 && strings.HasSuffix(rest, "/")
	rest = path.Clean(rest)
	if strings.HasPrefix(rest, "/") {
		p.anchored = true
		rest = rest[1:]
	}
	if rest == "" {
		return p, nil // "/": every absolute path
	}
	comps := strings.Split(rest, "/")
	if len(comps) > maxParts {
		return p, fmt.Errorf("invalid exclude pattern %q: more than %d components", s, maxParts)
	}
	for _, c := range comps {
		if c == "**" {
			p.parts = append(p.parts, part{any: true})
			continue
		}
		if _, err := path.Match(c, ""); err != nil {
			return p, fmt.Errorf("invalid exclude pattern %q: component %q: %w", s, c, err)
		}
		p.parts = append(p.parts, part{glob: c, literal: !strings.ContainsAny(c, `*?[]\`)})
	}
	return p, nil
}

func parseMarker(spec string) (marker, error) {
	name, header, _ := strings.Cut(spec, ":")
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") ||
		strings.ContainsRune(name, filepath.Separator) {
		return marker{}, fmt.Errorf("invalid exclude marker %q: want a file name, optionally followed by :header", spec)
	}
	return marker{name: name, header: header}, nil
}

// foldCase lower-cases s rune by rune, keeping bytes that are not valid
// UTF-8 as they are (strings.ToLower would turn them into U+FFFD and make
// different names equal).
func foldCase(s string) string {
	i := 0
	for ; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			break
		}
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteRune(unicode.ToLower(r))
		i += size
	}
	return b.String()
}

// splitPath returns the non-empty components of p and whether p is
// absolute.
func splitPath(p string) (comps []string, abs bool) {
	if filepath.Separator != '/' {
		p = filepath.ToSlash(p)
	}
	abs = strings.HasPrefix(p, "/")
	for c := range strings.SplitSeq(p, "/") {
		if c != "" {
			comps = append(comps, c)
		}
	}
	return comps, abs
}

// Excluded reports whether the patterns exclude absPath, an absolute,
// clean path; isDir tells whether it is a directory. The caller must not
// descend into excluded directories (that is how a directory's whole
// subtree is excluded).
func (m *Matcher) Excluded(absPath string, isDir bool) bool {
	if len(m.sensitive) == 0 && len(m.insensitive) == 0 {
		return false
	}
	comps, abs := splitPath(absPath)
	if matchList(m.sensitive, comps, abs, isDir) {
		return true
	}
	if len(m.insensitive) == 0 {
		return false
	}
	folded := make([]string, len(comps))
	for i, c := range comps {
		folded[i] = foldCase(c)
	}
	return matchList(m.insensitive, folded, abs, isDir)
}

// matchList applies patterns in order: a pattern can only exclude a path
// that is not excluded yet, a negated one only re-include an excluded one.
func matchList(pats []pattern, comps []string, abs, isDir bool) bool {
	excluded := false
	for i := range pats {
		p := &pats[i]
		if p.negated == excluded && p.match(comps, abs, isDir) {
			excluded = !p.negated
		}
	}
	return excluded
}

// bitset holds the matcher states 0..maxParts.
type bitset [(maxParts + 64) / 64]uint64

func (b *bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b *bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b *bitset) empty() bool    { return *b == bitset{} }

// match runs the pattern as a small automaton over the components: state i
// means "the first i parts have matched consecutive components". A ** part
// may consume components and stay in place, or be skipped. An unanchored
// pattern may start at every component. Reaching the final state after
// the last consumed component is a match; for a directory-only pattern
// this needs isDir only when that component is the last one of the path.
func (p *pattern) match(comps []string, abs, isDir bool) bool {
	if p.anchored && !abs {
		return false
	}
	n := len(p.parts)
	if n == 0 {
		return p.anchored // "/" matches every absolute path
	}
	closure := func(s *bitset) {
		for i := 0; i < n; i++ {
			if s.has(i) && p.parts[i].any {
				s.set(i + 1)
			}
		}
	}
	var cur bitset
	if p.anchored {
		cur.set(0)
		closure(&cur)
		if cur.has(n) {
			return true // all parts are **: matches the root and all below
		}
	}
	for j, c := range comps {
		if !p.anchored {
			cur.set(0)
			closure(&cur)
		}
		var next bitset
		for i := 0; i < n; i++ {
			if !cur.has(i) {
				continue
			}
			switch pt := &p.parts[i]; {
			case pt.any:
				next.set(i)
			case pt.literal:
				if pt.glob == c {
					next.set(i + 1)
				}
			default:
				if ok, err := path.Match(pt.glob, c); ok && err == nil {
					next.set(i + 1)
				}
			}
		}
		closure(&next)
		if next.has(n) && (!p.dirOnly || isDir || j < len(comps)-1) {
			return true
		}
		cur = next
		if p.anchored && cur.empty() {
			return false
		}
	}
	return false
}

// HasMarkers reports whether any marker files are configured, so a walker
// can skip ExcludedByMarker calls.
func (m *Matcher) HasMarkers() bool { return len(m.markers) > 0 }

// IsMarkerName reports whether name is the name of a configured marker
// file. A backup keeps the marker files of an excluded directory.
func (m *Matcher) IsMarkerName(name string) bool {
	for _, mk := range m.markers {
		if mk.name == name {
			return true
		}
	}
	return false
}

// ExcludedByMarker reports whether the directory dirPath contains one of
// the marker files (with the right header, where one is given), so its
// contents are to be excluded. A marker with a header must be a regular
// file and is read without following symlinks; a missing, short or
// different file does not count. Errors reading a marker are returned
// (with false) unless another marker matches.
func (m *Matcher) ExcludedByMarker(dirPath string) (bool, error) {
	return m.excludedByMarker(dirPath,
		func(name string) (fs.FileInfo, error) { return os.Lstat(filepath.Join(dirPath, name)) },
		func(name string) (*os.File, error) { return fsmeta.OpenFile(filepath.Join(dirPath, name)) })
}

// ExcludedByMarkerAt is ExcludedByMarker for an open directory, for trees
// deeper than PATH_MAX.
func (m *Matcher) ExcludedByMarkerAt(dir *os.File) (bool, error) {
	if dir == nil {
		return false, errors.New("check exclusion markers: nil directory")
	}
	return m.excludedByMarker(dir.Name(),
		func(name string) (fs.FileInfo, error) { return fsmeta.LstatAt(dir, name) },
		func(name string) (*os.File, error) { return fsmeta.OpenFileAt(dir, name) })
}

func (m *Matcher) excludedByMarker(dirName string, lstat func(string) (fs.FileInfo, error), open func(string) (*os.File, error)) (bool, error) {
	var errs []error
	for _, mk := range m.markers {
		ok, err := mk.present(lstat, open)
		if err != nil {
			errs = append(errs, fmt.Errorf("check exclusion marker %q in %q: %w", mk.name, dirName, err))
			continue
		}
		if ok {
			return true, nil
		}
	}
	return false, errors.Join(errs...)
}

func (mk *marker) present(lstat func(string) (fs.FileInfo, error), open func(string) (*os.File, error)) (bool, error) {
	fi, err := lstat(mk.name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if mk.header == "" {
		return true, nil
	}
	if !fi.Mode().IsRegular() {
		return false, nil
	}
	f, err := open(mk.name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // removed since the lstat
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, len(mk.header))
	if _, err := io.ReadFull(f, buf); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return false, nil // too short to carry the header
		}
		return false, err
	}
	return string(buf) == mk.header, nil
}
