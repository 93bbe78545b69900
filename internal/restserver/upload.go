package restserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// firstChunk is the buffer a request body starts with (or its
// Content-Length, when smaller); the buffer doubles as bytes arrive.
const firstChunk = 64 << 10

// uploadMemory accounts the request-body buffers held in memory: at most
// total bytes for everyone, and at most perUser bytes for one user, so
// that no user can take the whole budget. A buffer is charged when it is
// allocated, which happens as body bytes arrive, never for a claimed
// Content-Length up front.
type uploadMemory struct {
	all     *semaphore.Weighted
	perUser int64

	mu    sync.Mutex
	users map[string]*semaphore.Weighted
}

func newUploadMemory(total, perUser int64) *uploadMemory {
	return &uploadMemory{all: semaphore.NewWeighted(total), perUser: perUser, users: map[string]*semaphore.Weighted{}}
}

// errNoMemory: the user's share or the server's budget stayed exhausted
// for as long as a request may wait.
var errNoMemory = errors.New("upload memory exhausted")

// take charges n bytes to user (first to the user's share, so that one
// user's waiting requests queue behind each other, not in front of other
// users), waiting at most until ctx ends.
func (m *uploadMemory) take(ctx context.Context, user string, n int64) error {
	m.mu.Lock()
	us := m.users[user]
	if us == nil {
		us = semaphore.NewWeighted(m.perUser)
		m.users[user] = us
	}
	m.mu.Unlock()
	if err := us.Acquire(ctx, n); err != nil {
		return errNoMemory
	}
	if err := m.all.Acquire(ctx, n); err != nil {
		us.Release(n)
		return errNoMemory
	}
	return nil
}

// give returns n bytes taken for user.
func (m *uploadMemory) give(user string, n int64) {
	m.mu.Lock()
	us := m.users[user]
	m.mu.Unlock()
	m.all.Release(n)
	us.Release(n)
}

// rateGuard enforces the minimum transfer rate of one request body or
// reply: a transfer that moved fewer than MinTransferRate × TransferWindow
// bytes during the last TransferWindow is cut off, checked every eighth of
// a window once the transfer is a window old. Time the server
// itself spends waiting (for upload memory) does not count: the guard is
// paused then, and after a pause the window starts afresh.
type rateGuard struct {
	n      atomic.Int64 // bytes moved
	paused atomic.Bool
	cut    atomic.Bool // the guard cut the transfer off
	stop   chan struct{}
	done   chan struct{}
}

// guardRate starts a rateGuard whose abort function is called (once) to
// cut the transfer off. The caller must call end.
func (s *Server) guardRate(abort func()) *rateGuard {
	g := &rateGuard{stop: make(chan struct{}), done: make(chan struct{})}
	rate, window := s.opts.MinTransferRate, s.opts.TransferWindow
	go func() {
		defer close(g.done)
		tick := max(window/8, 10*time.Millisecond)
		t := time.NewTicker(tick)
		defer t.Stop()
		type sample struct {
			at time.Time
			n  int64
		}
		start := time.Now()
		samples := []sample{{start, 0}}
		for {
			select {
			case <-g.stop:
				return
			case <-t.C:
			}
			now := time.Now()
			if g.paused.Load() {
				start, samples = now, samples[:0]
				continue
			}
			n := g.n.Load()
			samples = append(samples, sample{now, n})
			// Keep one sample at least a window old as the baseline.
			for len(samples) > 1 && now.Sub(samples[1].at) >= window {
				samples = samples[1:]
			}
			base := samples[0]
			// The first check comes when the transfer is a window old (its grace).
			if now.Sub(start) < window || now.Sub(base.at) < window {
				continue
			}
			if float64(n-base.n) < float64(rate)*now.Sub(base.at).Seconds() {
				g.cut.Store(true)
				abort()
				return
			}
		}
	}()
	return g
}

// end stops the guard and waits for it; it reports whether the guard cut
// the transfer off.
func (g *rateGuard) end() bool {
	close(g.stop)
	<-g.done
	return g.cut.Load()
}

// past is a deadline in the past: setting it cuts a transfer off at once.
var past = time.Unix(1, 0)

// errTooSlow: the rate guard cut a request body off.
var errTooSlow = errors.New("request body arrived too slowly")

// readBody reads a request body of size bytes (its Content-Length) into
// memory charged to user. The buffer starts small and doubles as bytes
// arrive, so a client that claims a large body and sends little holds
// little memory; while it grows, the old and the new buffer are both
// charged. A body that falls below the minimum transfer rate is cut off
// (errTooSlow); when memory stays exhausted for queueWait, readBody fails
// with errNoMemory. The caller must call release, also on error.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, user string, size int64) (data []byte, release func(), err error) {
	var held int64
	release = func() {
		if held > 0 {
			s.mem.give(user, held)
			held = 0
		}
	}
	if size == 0 {
		return []byte{}, release, nil
	}
	rc := http.NewResponseController(w)
	g := s.guardRate(func() { _ = rc.SetReadDeadline(past) })
	defer func() {
		if g.end() && err != nil {
			err = fmt.Errorf("%w: less than %d bytes/s over %v", errTooSlow, s.opts.MinTransferRate, s.opts.TransferWindow)
		}
	}()
	grow := func(n int64) ([]byte, error) {
		g.paused.Store(true)
		defer g.paused.Store(false)
		ctx, cancel := context.WithTimeout(r.Context(), queueWait)
		defer cancel()
		if err := s.mem.take(ctx, user, n); err != nil {
			return nil, err
		}
		held += n
		return make([]byte, 0, n), nil
	}
	buf, err := grow(min(size, firstChunk))
	if err != nil {
		return nil, release, err
	}
	for int64(len(buf)) < size {
		if len(buf) == cap(buf) {
			old := int64(cap(buf))
			nb, err := grow(min(size, 2*old))
			if err != nil {
				return nil, release, err
			}
			buf = append(nb, buf...)
			s.mem.give(user, old)
			held -= old
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		g.n.Add(int64(n))
		if err == io.EOF && int64(len(buf)) < size {
			err = io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return nil, release, err
		}
	}
	return buf, release, nil
}
