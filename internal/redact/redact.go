package redact

import (
	"bytes"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Mask replaces a secret.
const Mask = "[redacted]"

// MinLen is the length below which a value is not treated as a secret.
const MinLen = 4

// Redactor replaces a fixed set of secrets. The zero value and nil
// replace nothing.
type Redactor struct {
	r *strings.Replacer
}

// New returns a redactor of secrets; empty and short ones are ignored.
func New(secrets ...string) *Redactor {
	var all []string
	for _, s := range secrets {
		if len(s) < MinLen {
			continue
		}
		all = append(all, s)
		for _, e := range []string{url.QueryEscape(s), url.PathEscape(s)} {
			if e != s {
				all = append(all, e)
			}
		}
	}
	if len(all) == 0 {
		return &Redactor{}
	}
	// strings.Replacer tries the old strings in argument order at each
	// position: longest first, so a secret that contains another is
	// masked whole.
	slices.SortFunc(all, func(a, b string) int { return len(b) - len(a) })
	all = slices.Compact(all)
	pairs := make([]string, 0, 2*len(all))
	for _, s := range all {
		pairs = append(pairs, s, Mask)
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// String returns s with every secret masked.
func (r *Redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Writer masks secrets in what is written through it, line by line.
type Writer struct {
	mu  sync.Mutex
	r   *Redactor
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer to w. Call Flush when done: it writes the
// last, unfinished line.
func NewWriter(w io.Writer, r *Redactor) *Writer { return &Writer{r: r, w: w} }

// Write writes the complete lines of p, masked, and keeps the rest. It
// reports len(p) unless w fails.
func (x *Writer) Write(p []byte) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.buf = append(x.buf, p...)
	i := bytes.LastIndexByte(x.buf, '\n')
	if i < 0 {
		// A line without end is held back, but not without bound.
		if len(x.buf) < 64<<10 {
			return len(p), nil
		}
		i = len(x.buf) - 1
	}
	out := x.r.String(string(x.buf[:i+1]))
	x.buf = append(x.buf[:0], x.buf[i+1:]...)
	if _, err := io.WriteString(x.w, out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what is held back.
func (x *Writer) Flush() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.buf) == 0 {
		return nil
	}
	out := x.r.String(string(x.buf))
	x.buf = x.buf[:0]
	_, err := io.WriteString(x.w, out)
	return err
}
