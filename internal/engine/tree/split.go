package tree

import (
	"errors"
	"fmt"
)

// Large directories are stored split: when the canonical listing of a
// directory exceeds SplitThreshold, its nodes are cut into runs ("chunks"),
// each stored as an ordinary tree blob, and the directory's tree blob lists
// the chunks' IDs. A backup that changes one entry of a directory with
// thousands of entries then stores one chunk and a small index instead of
// the whole listing again, and a directory's listing is no longer bounded
// by the largest blob.
//
// Chunk boundaries depend only on the names of the entries, so changing an
// entry's metadata never moves a boundary and inserting or removing an
// entry disturbs only its own chunk: a chunk ends after a node whose name
// hashes (FNV-1a 64, then the SplitMix64 finalizer) to 0 modulo
// chunkModulus once the chunk holds at least chunkMinNodes nodes, and in
// any case at chunkMaxNodes nodes or once its listing reaches
// chunkMaxBytes. Small chunks keep what a change rewrites small; the index
// of a directory of N entries holds about N/20 IDs.
const (
	// SplitThreshold is the size of a canonical listing above which
	// writers store the directory split.
	SplitThreshold = 16 << 10

	chunkModulus  = 16
	chunkMinNodes = 4
	chunkMaxNodes = 2048
	chunkMaxBytes = 1 << 20

	// maxChunks bounds how many chunks a reader accepts for one directory
	// (about 2,000 million entries at the largest chunk size).
	maxChunks = 1 << 20
)

// Save stores t through save, which stores one tree blob and returns its ID,
// splitting a listing larger than SplitThreshold. It returns the ID of the
// directory's tree blob. Chunks are saved before the tree that lists them.
func Save(t *Tree, save func(b []byte) (ID, error)) (ID, error) {
	if len(t.Chunks) > 0 {
		return ID{}, errors.New("save tree: the tree is already split")
	}
	if err := t.checkSorted(); err != nil {
		return ID{}, err
	}
	// Encode every node once, comma-terminated, into one buffer: the
	// canonical listing of any run of nodes is then a slice of it between
	// the fixed prefix and suffix.
	nodes := make([]byte, 0, 384*len(t.Nodes))
	ends := make([]int, len(t.Nodes))
	for i, n := range t.Nodes {
		var err error
		if nodes, err = appendNode(nodes, n); err != nil {
			return ID{}, err
		}
		nodes = append(nodes, ',')
		ends[i] = len(nodes)
	}
	listing := func(from, to int) []byte { // nodes[from:to] as a canonical tree
		start := 0
		if from > 0 {
			start = ends[from-1]
		}
		body := nodes[start:start]
		if to > from {
			body = nodes[start : ends[to-1]-1] // without the last comma
		}
		out := make([]byte, 0, len(listPrefix)+len(body)+len(listSuffix))
		return append(append(append(out, listPrefix...), body...), listSuffix...)
	}
	if len(nodes)+len(listPrefix)+len(listSuffix) <= SplitThreshold {
		return save(listing(0, len(t.Nodes)))
	}
	idx := &Tree{Nodes: []*Node{}}
	start := 0
	for i, n := range t.Nodes {
		count := i + 1 - start
		size := ends[i]
		if start > 0 {
			size -= ends[start-1]
		}
		last := i == len(t.Nodes)-1
		if !last && !(count >= chunkMinNodes && nameCut(n.Name)) && count < chunkMaxNodes && size < chunkMaxBytes {
			continue
		}
		id, err := save(listing(start, i+1))
		if err != nil {
			return ID{}, err
		}
		idx.Chunks = append(idx.Chunks, id)
		start = i + 1
	}
	ib, err := idx.Encode()
	if err != nil {
		return ID{}, err
	}
	return save(ib)
}

const (
	listPrefix = `{"nodes":[`
	listSuffix = "]}\n"
)

func nameCut(name RawString) bool {
	// FNV-1a 64 (hash/fnv's New64a), inline to spare two allocations
	// per name. FNV's low bits barely depend on all but the last bytes of a name
	// (file-000001, file-000002, ...); the SplitMix64 finalizer spreads
	// every byte over every bit.
	x := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		x ^= uint64(name[i])
		x *= 1099511628211
	}
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	return x%chunkModulus == 0
}

// Load reads the listing of the directory whose tree blob is id through
// load, joining the chunks of a split tree. It returns the IDs of those
// chunks too (nil for a tree stored whole): they are tree blobs the
// directory depends on.
func Load(id ID, load func(ID) ([]byte, error)) (*Tree, []ID, error) {
	b, err := load(id)
	if err != nil {
		return nil, nil, err
	}
	t, err := Decode(b)
	if err != nil {
		return nil, nil, err
	}
	if len(t.Chunks) == 0 {
		return t, nil, nil
	}
	if len(t.Chunks) > maxChunks {
		return nil, nil, fmt.Errorf("decode tree: %d chunks, more than the limit of %d", len(t.Chunks), maxChunks)
	}
	chunks := t.Chunks
	out := &Tree{}
	for i, cid := range chunks {
		b, err := load(cid)
		if err != nil {
			return nil, nil, fmt.Errorf("chunk %d (%s): %w", i, cid.Short(), err)
		}
		c, err := Decode(b)
		if err != nil {
			return nil, nil, fmt.Errorf("chunk %d (%s): %w", i, cid.Short(), err)
		}
		switch {
		case len(c.Chunks) > 0:
			return nil, nil, fmt.Errorf("decode tree: chunk %d (%s) is itself split", i, cid.Short())
		case len(c.Nodes) == 0:
			return nil, nil, fmt.Errorf("decode tree: chunk %d (%s) is empty", i, cid.Short())
		case len(out.Nodes) > 0 && out.Nodes[len(out.Nodes)-1].Name >= c.Nodes[0].Name:
			return nil, nil, fmt.Errorf("decode tree: chunk %d (%s) starts with %q, out of order after the previous chunk", i, cid.Short(), string(c.Nodes[0].Name))
		}
		out.Nodes = append(out.Nodes, c.Nodes...)
	}
	return out, chunks, nil
}
