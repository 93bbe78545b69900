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

// refMask builds an n-bit mask as the package documentation defines it.
func refMask(n int) uint64 {
	var m uint64
	for k := 0; k < n; k++ {
		m |= 1 << uint(63-(48*k)/n)
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

	// Hash values h(L-1) for L in [Min, hi], rolled from byte Min-64;
	// every few positions cross-check against the definition.
	hs := make([]uint64, hi+1)
	var h uint64
	for i := p.Min - 64; i < hi; i++ {
		h = h<<1 + tab.gear[x[i]]
		if i+1 >= p.Min {
			hs[i+1] = h
			if i%61 == 0 && h != refHash(tab, x, i) {
				panic("rolling gear hash differs from its definition")
			}
		}
	}
	// runStart[i]: start of the run of equal bytes that holds x[i].
	runStart := make([]int, hi)
	for i := range runStart {
		if i > 0 && x[i-1] == x[i] {
			runStart[i] = runStart[i-1]
		} else {
			runStart[i] = i
		}
	}

	for L := p.Min; L <= hi; L++ {
		m := maskL
		if L < normal {
			m = maskS
		}
		if h := hs[L]; h&m == 0 && h != fixed(x[L-1]) {
			return L
		}
		if r := runStart[L-1]; (L-r)%p.Avg == 0 {
			return L
		}
	}
	if n <= p.Max {
		return n
	}
	best, bestH := -1, uint64(0)
	for L := p.Min; L <= p.Max; L++ {
		if h := hs[L]; h != fixed(x[L-1]) && (best < 0 || h > bestH) {
			best, bestH = L, h
		}
	}
	if best < 0 {
		return p.Max
	}
	return best
}
