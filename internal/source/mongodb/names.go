package mongodb

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// maxEscapedName is mongodump's limit for an escaped collection name, so
// that the longest file name (.metadata.json.gz) fits in 255 bytes.
const maxEscapedName = 238

// FileName is the file name, without extension, of a database or
// collection in a dump: mongodump's escaping (url.PathEscape), with a name
// longer than 238 bytes escaped shortened to its first 208 bytes, "%24" and
// a hash of the whole name. "." and ".." are escaped as well.
func FileName(name string) string {
	esc := url.PathEscape(name)
	if len(esc) > maxEscapedName {
		sum := sha1.Sum([]byte(name))
		// Exactly as mongodump, even where the cut splits an escape:
		// mongorestore takes such names from the metadata.
		esc = esc[:208] + "%24" + base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if esc == "." || esc == ".." {
		esc = strings.ReplaceAll(esc, ".", "%2E")
	}
	return esc
}

// SplitNamespace splits "db.coll" at its first dot.
func SplitNamespace(ns string) (db, coll string, err error) {
	db, coll, ok := strings.Cut(ns, ".")
	if !ok || db == "" || coll == "" {
		return "", "", fmt.Errorf("namespace %q is not DB.COLLECTION", ns)
	}
	return db, coll, nil
}

// Pattern matches namespaces ("db.coll") the way mongorestore's
// --nsInclude does: '*' matches any run of characters, dots included; a
// backslash makes the next character literal. A pattern without an
// unescaped dot names a whole database: "shop" is "shop.*".
type Pattern struct {
	src   string
	re    *regexp.Regexp
	stars int
}

// ParsePattern compiles a namespace pattern.
func ParsePattern(s string) (*Pattern, error) {
	parts, err := splitPattern(s)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("^")
	for i, lit := range parts {
		if i > 0 {
			b.WriteString("(.*)")
		}
		b.WriteString(regexp.QuoteMeta(lit))
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("namespace pattern %q: %w", s, err)
	}
	return &Pattern{src: s, re: re, stars: len(parts) - 1}, nil
}

// Bounds of a pattern: a namespace has at most 255 bytes, and matching
// costs grow with the wildcards.
const (
	maxPatternLen   = 1024
	maxPatternStars = 16
)

// splitPattern returns the literal parts between the stars of a pattern,
// unescaped, with ".*" appended when the pattern has no unescaped dot.
func splitPattern(s string) ([]string, error) {
	if s == "" {
		return nil, errors.New("empty namespace pattern")
	}
	if len(s) > maxPatternLen || strings.Count(s, "*") > maxPatternStars {
		return nil, fmt.Errorf("namespace pattern %.40q… is too long (at most %d bytes and %d wildcards)", s, maxPatternLen, maxPatternStars)
	}
	parts := []string{""}
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("namespace pattern %q ends in a lone backslash", s)
			}
			i++
			parts[len(parts)-1] += string(s[i])
		case '*':
			parts = append(parts, "")
		default:
			if c == '.' {
				dot = true
			}
			parts[len(parts)-1] += string(c)
		}
	}
	if !dot {
		parts[len(parts)-1] += "."
		parts = append(parts, "")
	}
	return parts, nil
}

// String is the pattern as given.
func (p *Pattern) String() string { return p.src }

// Match reports whether ns matches the whole pattern.
func (p *Pattern) Match(ns string) bool { return p.re.MatchString(ns) }

// Rename maps namespaces like mongorestore's --nsFrom/--nsTo: each '*' of
// From captures what it matched, and the captures replace the stars of To
// in order ("shop.*" → "shop_copy.*").
type Rename struct {
	from  *Pattern
	to    []string // literal parts of To between its stars
	toSrc string   // To as given
}

// ParseRename compiles a renaming; both patterns must have as many stars.
func ParseRename(from, to string) (*Rename, error) {
	f, err := ParsePattern(from)
	if err != nil {
		return nil, err
	}
	t, err := splitPattern(to)
	if err != nil {
		return nil, err
	}
	if len(t)-1 != f.stars {
		return nil, fmt.Errorf("renaming %q to %q: the patterns have %d and %d wildcards; they need as many", from, to, f.stars, len(t)-1)
	}
	return &Rename{from: f, to: t, toSrc: to}, nil
}

// Apply returns the new name of ns, and false when From does not match.
func (r *Rename) Apply(ns string) (string, bool) {
	m := r.from.re.FindStringSubmatch(ns)
	if m == nil {
		return "", false
	}
	var b strings.Builder
	for i, lit := range r.to {
		if i > 0 {
			b.WriteString(m[i])
		}
		b.WriteString(lit)
	}
	return b.String(), true
}

// Patterns are From and To as given.
func (r *Rename) Patterns() (from, to string) { return r.from.src, r.toSrc }

// String describes the renaming.
func (r *Rename) String() string {
	return r.from.src + " → " + strings.Join(r.to, "*")
}

// Selector decides which namespaces a dump or restore takes.
type Selector struct {
	// Databases and Collections ("db.coll") select; none means all.
	Databases   []string
	Collections []string
	// Include, when not empty, keeps only namespaces matching one of them.
	Include []*Pattern
	// Exclude drops namespaces matching any of them.
	Exclude []*Pattern
}

// Validate checks the collection names.
func (s *Selector) Validate() error {
	for _, c := range s.Collections {
		if _, _, err := SplitNamespace(c); err != nil {
			return err
		}
	}
	for _, d := range s.Databases {
		if d == "" || strings.ContainsAny(d, "/\\. \"$") {
			return fmt.Errorf("invalid database name %q", d)
		}
	}
	return nil
}

// explicit reports whether databases or collections were named.
func (s *Selector) explicit() bool { return len(s.Databases) > 0 || len(s.Collections) > 0 }

// WantsDB reports whether any collection of db may be selected.
func (s *Selector) WantsDB(db string) bool {
	if !s.explicit() {
		return true
	}
	for _, d := range s.Databases {
		if d == db {
			return true
		}
	}
	for _, c := range s.Collections {
		if d, _, _ := SplitNamespace(c); d == db {
			return true
		}
	}
	return false
}

// Wants reports whether the namespace db.coll is selected.
func (s *Selector) Wants(db, coll string) bool {
	ns := db + "." + coll
	if s.explicit() {
		ok := false
		for _, d := range s.Databases {
			ok = ok || d == db
		}
		for _, c := range s.Collections {
			ok = ok || c == ns
		}
		if !ok {
			return false
		}
	}
	if len(s.Include) > 0 {
		ok := false
		for _, p := range s.Include {
			ok = ok || p.Match(ns)
		}
		if !ok {
			return false
		}
	}
	for _, p := range s.Exclude {
		if p.Match(ns) {
			return false
		}
	}
	return true
}
