package local

import (
	"container/list"
	"os"
	"sync"
)

// fdCache keeps recently read pack files open, so a restore that reads
// thousands of small blobs from the same packs does not pay an open and a
// close for each. Packs are immutable under their name, so a cached handle
// always reads the right bytes; Remove evicts. (A pack removed by another
// process stays readable through a cached handle until it is evicted,
// which only ever helps a reader.)
type fdCache struct {
	mu    sync.Mutex
	max   int
	m     map[string]*cfile
	order *list.List // front = most recently used
}

type cfile struct {
	path    string
	f       *os.File
	size    int64
	refs    int
	evicted bool
	elem    *list.Element
}

func newFDCache(max int) *fdCache {
	return &fdCache{max: max, m: map[string]*cfile{}, order: list.New()}
}

// get returns an open handle for path; release it with put.
func (c *fdCache) get(path string, open func(string) (*os.File, int64, error)) (*cfile, error) {
	c.mu.Lock()
	if cf, ok := c.m[path]; ok {
		cf.refs++
		c.order.MoveToFront(cf.elem)
		c.mu.Unlock()
		return cf, nil
	}
	c.mu.Unlock()
	f, size, err := open(path)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cf, ok := c.m[path]; ok { // raced with another reader
		_ = f.Close()
		cf.refs++
		c.order.MoveToFront(cf.elem)
		return cf, nil
	}
	cf := &cfile{path: path, f: f, size: size, refs: 1}
	cf.elem = c.order.PushFront(cf)
	c.m[path] = cf
	for c.order.Len() > c.max {
		old := c.order.Back().Value.(*cfile)
		c.dropLocked(old)
	}
	return cf, nil
}

func (c *fdCache) put(cf *cfile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cf.refs--
	if cf.evicted && cf.refs == 0 {
		_ = cf.f.Close()
	}
}

func (c *fdCache) dropLocked(cf *cfile) {
	if cf.evicted {
		return
	}
	cf.evicted = true
	c.order.Remove(cf.elem)
	delete(c.m, cf.path)
	if cf.refs == 0 {
		_ = cf.f.Close()
	}
}

// evict forgets path (before it is removed).
func (c *fdCache) evict(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cf, ok := c.m[path]; ok {
		c.dropLocked(cf)
	}
}
