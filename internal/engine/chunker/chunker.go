package chunker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	// initialBufSize is the first buffer allocation; the buffer doubles up
	// to 2*Max as a stream turns out to need it, so that chunking many
	// small files does not allocate 2*Max bytes each.
	initialBufSize = 64 << 10
	// maxEmptyReads is how many successive (0, nil) reads are tolerated
	// before giving up with io.ErrNoProgress.
	maxEmptyReads = 100
)

// Chunker splits one stream into content-defined chunks. It is not safe for
// concurrent use. Use Reset to chunk the next stream with the same buffers
// and gear table.
type Chunker struct {
	rd  io.Reader
	tab *Table

	min, avg, norm, max int
	maskS, maskL        uint64
	bufSize             int // final size of buf: 2*Max, at least initialBufSize

	buf        []byte
	start, end int   // buffered input not yet returned: buf[start:end]
	offset     int64 // input bytes read so far
	eof        bool  // no more input: end of stream or read error
	err        error // read error, returned once the buffered input is drained
	perr       error // invalid configuration, returned by every Next
}

// New returns a Chunker that splits rd according to p, deriving the gear
// table from p.Seed (about 10 µs; use NewWithTable to share one
// table between Chunkers, and Reset to reuse a Chunker).
//
// If p is invalid, every call to Next returns the error of p.Validate.
func New(rd io.Reader, p Params) *Chunker {
	if err := p.Validate(); err != nil {
		return &Chunker{rd: rd, perr: err}
	}
	return newChunker(rd, p, NewTable(p.Seed))
}

// NewWithTable is like New but uses a precomputed gear table, which must
// have been derived from p.Seed. If it was not, or p is invalid, every
// call to Next returns an error.
func NewWithTable(rd io.Reader, p Params, t *Table) *Chunker {
	if err := p.Validate(); err != nil {
		return &Chunker{rd: rd, perr: err}
	}
	if t == nil {
		return &Chunker{rd: rd, perr: errors.New("chunker: NewWithTable: nil table")}
	}
	if t.seed != p.Seed {
		return &Chunker{rd: rd, perr: errors.New("chunker: NewWithTable: table was derived from a different seed than Params.Seed")}
	}
	return newChunker(rd, p, t)
}

func newChunker(rd io.Reader, p Params, t *Table) *Chunker {
	maskS, maskL := p.masks()
	return &Chunker{
		rd:      rd,
		tab:     t,
		min:     p.Min,
		avg:     p.Avg,
		norm:    p.normal(),
		max:     p.Max,
		maskS:   maskS,
		maskL:   maskL,
		bufSize: max(2*p.Max, initialBufSize),
	}
}

// Reset makes c chunk rd from its beginning, keeping the parameters, the
// gear table and the buffer. Input buffered from the previous reader is
// discarded.
func (c *Chunker) Reset(rd io.Reader) {
	c.rd = rd
	c.start, c.end = 0, 0
	c.offset = 0
	c.eof = false
	c.err = nil
}

// Shrink drops the read buffer if it grew past n bytes, so that an idle
// Chunker does not hold up to 2*Max bytes; the next stream regrows it.
// Call it between streams only.
func (c *Chunker) Shrink(n int) {
	if cap(c.buf) > n {
		c.buf = nil
		c.start, c.end = 0, 0
	}
}

// Next returns the next chunk, appended to buf[:0] (buf is grown as
// needed; pass the previous result to reuse its memory). The chunk's bytes
// belong to the caller. After the last chunk Next returns buf[:0] and
// io.EOF; an empty stream yields io.EOF at once.
//
// If the reader fails, the bytes it delivered before failing are still
// returned, chunked as if the stream ended there, and then Next returns the
// read error, wrapped with the offset where it occurred, instead of io.EOF.
// The error is sticky until Reset.
func (c *Chunker) Next(buf []byte) ([]byte, error) {
	if c.perr != nil {
		return buf[:0], c.perr
	}
	for {
		avail := c.end - c.start
		if avail == 0 && c.eof {
			if c.err != nil {
				return buf[:0], c.err
			}
			return buf[:0], io.EOF
		}
		data := c.buf[c.start : c.start+min(avail, c.max)]
		// The first cut point in a prefix of the input is the first cut
		// point of the input, so a match can be returned before the
		// whole Max window is buffered.
		n := c.firstCut(data)
		switch {
		case n > 0:
		case avail > c.max:
			n = c.bestCut(data)
		case c.eof:
			n = avail // the last chunk
		default:
			c.fill()
			continue
		}
		buf = append(buf[:0], c.buf[c.start:c.start+n]...)
		c.start += n
		return buf, nil
	}
}

// fill moves the buffered input to the front of the buffer, grows the
// buffer if it is more than half full, and reads until it is full, the
// stream ends, or the reader fails.
func (c *Chunker) fill() {
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
	}
	if 2*c.end >= len(c.buf) && len(c.buf) < c.bufSize {
		nb := make([]byte, min(max(2*len(c.buf), initialBufSize), c.bufSize))
		c.end = copy(nb, c.buf[:c.end])
		c.buf = nb
	}
	if c.rd == nil {
		c.fail(errors.New("no reader (New(nil, ...) needs Reset)"))
		return
	}
	for empty := 0; c.end < len(c.buf); {
		n, err := c.rd.Read(c.buf[c.end:])
		if n < 0 || n > len(c.buf)-c.end {
			c.fail(fmt.Errorf("reader returned invalid count %d", n))
			return
		}
		c.end += n
		c.offset += int64(n)
		switch {
		case err == io.EOF:
			c.eof = true
			return
		case err != nil:
			c.fail(err)
			return
		case n > 0:
			empty = 0
		default:
			if empty++; empty >= maxEmptyReads {
				c.fail(io.ErrNoProgress)
				return
			}
		}
	}
}

func (c *Chunker) fail(err error) {
	c.eof = true
	c.err = fmt.Errorf("chunker: read input at offset %d: %w", c.offset, err)
}

// firstCut returns the smallest cut point in data (len(data) <= Max), or
// 0 if there is none.
func (c *Chunker) firstCut(data []byte) int {
	if len(data) < c.min {
		return 0
	}
	g := &c.tab.gear
	var h uint64
	for _, b := range data[c.min-WindowSize : c.min-1] {
		h = h<<1 + g[b]
	}
	// Byte i ends the window of candidate length i+1.
	i, ok := c.min-1, false
	if i, h, ok = scan(g, data, i, min(c.norm-1, len(data)), h, c.maskS, c.avg); ok {
		return i + 1
	}
	if i, _, ok = scan(g, data, i, len(data), h, c.maskL, c.avg); ok {
		return i + 1
	}
	return 0
}

// scan continues the gear hash h over data[i:end] and returns the index of
// the first byte that ends a cut point, or end and false. Byte j ends a
// hash cut if h&m == 0 after it and h is not the fixed point -gear[data[j]]
// (which it is when the 64-byte window is one repeated byte), and a run cut
// as computed by runCut.
//
// This is the hot loop, unrolled eightfold. Uniform windows are looked for
// only at the first byte, at every eighth byte and in the tail: a run long
// enough to hold a run cut covers at least Avg-63 >= 65 windows, so it is
// noticed no later than its cut unless it began before i, which the check
// at the first byte catches.
func scan(g *[256]uint64, data []byte, i, end int, h, m uint64, period int) (int, uint64, bool) {
	lo := i
	if i < end {
		b := data[i]
		h = h<<1 + g[b]
		switch {
		case h&m == 0 && h != -g[b]:
			return i, h, true
		case h == -g[b]:
			cut, next := runCut(data, i, lo, end, period)
			if cut >= 0 {
				return cut, h, true
			}
			i = next
		default:
			i++
		}
	}
	for i+8 <= end {
		d := data[i : i+8 : i+8]
		// The loop-carried chain advances two bytes per step:
		// h<<2 + (a<<1 + b) == (h<<1 + a)<<1 + b, and the hash after the
		// first byte of the pair is computed off the chain.
		g0, g1 := g[d[0]], g[d[1]]
		h0 := h<<1 + g0
		h = h<<2 + (g0<<1 + g1)
		if h0&m == 0 && h0 != -g0 {
			return i, h0, true
		}
		if h&m == 0 && h != -g1 {
			return i + 1, h, true
		}
		g2, g3 := g[d[2]], g[d[3]]
		h2 := h<<1 + g2
		h = h<<2 + (g2<<1 + g3)
		if h2&m == 0 && h2 != -g2 {
			return i + 2, h2, true
		}
		if h&m == 0 && h != -g3 {
			return i + 3, h, true
		}
		g4, g5 := g[d[4]], g[d[5]]
		h4 := h<<1 + g4
		h = h<<2 + (g4<<1 + g5)
		if h4&m == 0 && h4 != -g4 {
			return i + 4, h4, true
		}
		if h&m == 0 && h != -g5 {
			return i + 5, h, true
		}
		g6, g7 := g[d[6]], g[d[7]]
		h6 := h<<1 + g6
		h = h<<2 + (g6<<1 + g7)
		if h6&m == 0 && h6 != -g6 {
			return i + 6, h6, true
		}
		if h&m == 0 && h != -g7 {
			return i + 7, h, true
		}
		if h == -g7 {
			// Inside a run: h stays the fixed point until it ends.
			cut, next := runCut(data, i+7, lo, end, period)
			if cut >= 0 {
				return cut, h, true
			}
			i = next
			continue
		}
		i += 8
	}
	for ; i < end; i++ {
		b := data[i]
		h = h<<1 + g[b]
		if h&m == 0 && h != -g[b] {
			return i, h, true
		}
		if h == -g[b] {
			cut, next := runCut(data, i, lo, end, period)
			if cut >= 0 {
				return cut, h, true
			}
			i = next - 1
		}
	}
	return i, h, false
}

// runCut is called when the gear hash after data[x] is the fixed point of
// data[x]. If the window data[x-63:x+1] is indeed uniform, x lies in a run
// of one repeated byte that starts at r >= 0, and runCut returns the first
// run cut at or after lo and before end: the byte r+k*period-1 for the
// smallest k >= 1 that is not before lo, if the run reaches it. If it does
// not, runCut returns -1 and the index where the run ends (at most end),
// where the hash scan resumes: the hash after the run's last byte is the
// same fixed point. If the window is not uniform (a 2^-64 coincidence) it
// returns -1, x+1.
func runCut(data []byte, x, lo, end, period int) (cut, next int) {
	r := runStart(data, x)
	if x-r < WindowSize-1 {
		return -1, x + 1
	}
	k := max(1, (lo-r+period)/period) // ceil((lo-r+1)/period)
	cut = r + k*period - 1
	if e := runEnd(data, x, min(cut+1, end)); e <= cut {
		return -1, e
	}
	return cut, 0
}

// repeat8 is the uint64 whose eight bytes are b.
func repeat8(b byte) uint64 { return uint64(b) * 0x0101010101010101 }

// runStart returns the smallest r with data[r:x+1] all equal to data[x].
func runStart(data []byte, x int) int {
	b := data[x]
	w := repeat8(b)
	r := x
	for r >= 8 && binary.LittleEndian.Uint64(data[r-8:r]) == w {
		r -= 8
	}
	for r > 0 && data[r-1] == b {
		r--
	}
	return r
}

// runEnd returns the smallest e in (x, limit] such that e == limit or
// data[e] != data[x].
func runEnd(data []byte, x, limit int) int {
	b := data[x]
	w := repeat8(b)
	e := x + 1
	for e+8 <= limit && binary.LittleEndian.Uint64(data[e:e+8]) == w {
		e += 8
	}
	for e < limit && data[e] == b {
		e++
	}
	return e
}

// bestCut returns the fallback cut of a Max window without cut point: the
// length L in [Min, Max] whose window is not uniform and whose hash is the
// largest (the largest such L on ties), or Max if every window is uniform.
// Preferring the last of equal hashes makes chunks of periodic input close
// to Max rather than to Min, which bounds the cost of the two scans of the
// window per chunk.
func (c *Chunker) bestCut(data []byte) int {
	g := &c.tab.gear
	var h uint64
	for _, b := range data[c.min-WindowSize : c.min-1] {
		h = h<<1 + g[b]
	}
	best, bestH := -1, uint64(0)
	for i := c.min - 1; i < len(data); i++ {
		b := data[i]
		h = h<<1 + g[b]
		if (h >= bestH || best < 0) && h != -g[b] {
			best, bestH = i, h
		}
	}
	if best < 0 {
		return len(data)
	}
	return best + 1
}
