package chunker

// refChunkLens is a straightforward implementation of the cut-point rules
// written down in doc.go, independent of the optimized Chunker (no
// buffering, no unrolling, no skipping over runs). The tests compare the
// two.
func refChunkLens(tab *Table, p Params, x []byte) []int {
	var lens []int
	for len(x) > 0 {
		n := refNextLen(tab, p, x)
		lens = append(lens, n)
		x = x[n:]
	}
	return lens
}

// refMask builds an n-bit mask as the package documentation defines it:
// bits 63 down to 64-n.
func refMask(n int) uint64 {
	var m uint64
	for k := 0; k < n; k++ {
		m |= 1 << uint(63-k)
	}
	return m
}

// refHash returns h(p), the gear hash of the 64-byte window ending at
// x[p], computed from its definition.
func refHash(tab *Table, x []byte, p int) uint64 {
	var h uint64
	for j := 0; j < 64; j++ {
		h += tab.gear[x[p-j]] << uint(j)
	}
	return h
}

func refNextLen(tab *Table, p Params, x []byte) int {
	n := len(x)
	if n <= p.Min {
		return n
	}
	b := 0
	for 1<<b < p.Avg {
		b++
	}
	maskS, maskL := refMask(b+2), refMask(b-2)
	normal := p.Avg - p.Min/2
	if normal < p.Min {
		normal = p.Min
	}
	fixed := func(v byte) uint64 { return -tab.gear[v] }
	hi := min(n, p.Max)

	// hashes calls f(L, h(L-1)) for L = Min..hi, rolling the hash from byte
	// Min-64 and cross-checking it against the definition now and then.
	hashes := func(f func(L int, h uint64) bool) {
		var h uint64
		for i := p.Min - 64; i < hi; i++ {
			h = h<<1 + tab.gear[x[i]]
			if i+1 < p.Min {
				continue
			}
			if i%61 == 0 && h != refHash(tab, x, i) {
				panic("rolling gear hash differs from its definition")
			}
			if f(i+1, h) {
				return
			}
		}
	}

	cut := 0
	runStart := 0 // start of the run of equal bytes that holds x[L-1]
	for i := 1; i < p.Min-1; i++ {
		if x[i] != x[i-1] {
			runStart = i
		}
	}
	hashes(func(L int, h uint64) bool {
		if L-1 > 0 && x[L-1] != x[L-2] {
			runStart = L - 1
		}
		m := maskL
		if L < normal {
			m = maskS
		}
		if h&m == 0 && h != fixed(x[L-1]) || (L-runStart)%p.Avg == 0 {
			cut = L
			return true
		}
		return false
	})
	if cut > 0 {
		return cut
	}
	if n <= p.Max {
		return n
	}
	best, bestH := -1, uint64(0)
	hashes(func(L int, h uint64) bool {
		if h != fixed(x[L-1]) && (best < 0 || h >= bestH) {
			best, bestH = L, h
		}
		return false
	})
	if best < 0 {
		return p.Max
	}
	return best
}
