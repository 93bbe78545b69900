package source

import (
	"io"
	"sync"
)

// readAhead reads a tool's output in its own goroutine, up to
// readAheadBlocks blocks ahead of the consumer, so that the tool never
// waits on a full pipe while the consumer is briefly busy (sealing and
// writing a pack): the tool and the backup then run side by side instead
// of taking turns.
type readAhead struct {
	ch   chan raChunk
	cur  []byte
	blk  []byte
	err  error
	stop chan struct{}
	done chan struct{}
	once sync.Once
	pool sync.Pool
}

type raChunk struct {
	b   []byte
	err error
}

const (
	readAheadBlocks    = 64
	readAheadBlockSize = 256 << 10
)

func newReadAhead(r io.Reader) *readAhead {
	ra := &readAhead{ch: make(chan raChunk, readAheadBlocks), stop: make(chan struct{}), done: make(chan struct{})}
	ra.pool.New = func() any { b := make([]byte, readAheadBlockSize); return &b }
	go func() {
		defer close(ra.done)
		defer close(ra.ch)
		for {
			b := *ra.pool.Get().(*[]byte)
			n, err := io.ReadFull(r, b)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			select {
			case ra.ch <- raChunk{b[:n], err}:
			case <-ra.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ra
}

func (ra *readAhead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.blk != nil {
			b := ra.blk[:cap(ra.blk)]
			ra.pool.Put(&b)
			ra.blk = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		c, ok := <-ra.ch
		if !ok {
			ra.err = io.EOF
			continue
		}
		ra.blk, ra.cur = c.b, c.b
		if c.err != nil {
			ra.err = c.err
		}
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// stopReading ends the goroutine without reading further; wait blocks
// until it no longer touches the pipe (it may be stuck in a read until the
// tool exits or the pipe closes).
func (ra *readAhead) stopReading() { ra.once.Do(func() { close(ra.stop) }) }

func (ra *readAhead) wait() { <-ra.done }
