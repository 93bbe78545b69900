// Package bufpool recycles large byte buffers.
//
// Unlike a sync.Pool, a List keeps its buffers across garbage collections,
// which a backup runs every few megabytes of allocation: buffers dropped
// by the collector come back as fresh memory that has to be zeroed and
// faulted in again, which cost a backup about a tenth of its CPU time.
package bufpool

// List is a bounded free list of byte buffers, safe for concurrent use.
type List struct {
	c       chan []byte
	maxSize int
}

// New returns a list that keeps at most n buffers of at most maxSize bytes
// each: larger ones are left to the collector, so that a few outsized
// blobs do not pin their memory for the rest of a backup.
func New(n, maxSize int) List { return List{c: make(chan []byte, n), maxSize: maxSize} }

// Get returns an empty buffer with room for at least size bytes.
func (l List) Get(size int) []byte {
	select {
	case b := <-l.c:
		if cap(b) >= size {
			return b[:0]
		}
	default:
	}
	return make([]byte, 0, size)
}

// Put offers b for reuse; it is dropped when the list is full. The caller
// must not use b afterwards.
func (l List) Put(b []byte) {
	if cap(b) == 0 || cap(b) > l.maxSize {
		return
	}
	select {
	case l.c <- b[:0]:
	default:
	}
}
