package testsrv

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a loopback TCP proxy that injects faults between a client and a
// server: latency, connections reset on demand, refused connections, every
// n-th connection cut, and every n-th connection with one byte flipped.
// Every knob may be turned at any time, also while connections are open;
// it applies from then on. The proxy stops,
// resetting what is still open, when the test ends.
//
// A reset (TCP RST, via SO_LINGER 0) is what a client sees when a server
// crashes or a middlebox drops its state: "connection reset by peer" on
// the next read or write.
type Proxy struct {
	target string
	ln     net.Listener

	latency   atomic.Int64 // time.Duration per chunk
	refuse    atomic.Bool
	failAfter atomic.Int64

	accepted, refused, failed, dropped atomic.Int64
	corrupted                          atomic.Int64
	toServer, toClient                 atomic.Int64
	chunksToServer                     atomic.Int64

	mu        sync.Mutex
	failEvery int64 // FailEvery's n
	failBase  int64 // connections accepted before FailEvery was called
	conns     map[*proxyConn]struct{}
	closed    bool
	idle      chan struct{} // closed and replaced when the last open connection ends
	// CorruptEvery's n and offset, and the connections accepted before
	// it was called.
	corruptEvery, corruptAt, corruptBase int64

	wg   sync.WaitGroup
	done chan struct{} // closed by Close
	once sync.Once
}

// ProxyStats are the counters of a Proxy since it started.
type ProxyStats struct {
	// Accepted counts every connection a client made, Refused those reset
	// at once by Refuse, Failed those cut by FailEvery, Dropped those
	// reset by DropAll. Corrupted counts the bytes flipped by
	// CorruptEvery.
	Accepted, Refused, Failed, Dropped, Corrupted int64
	// Open is the number of connections open now (client side accepted
	// and not yet closed by either end).
	Open int64
	// BytesToServer and BytesToClient count the bytes forwarded in each
	// direction (including a last chunk whose write failed).
	BytesToServer, BytesToClient int64
	// ChunksToServer counts the reads from clients that were forwarded;
	// for request-reply protocols such as HTTP it approximates the number
	// of requests (a request is mostly written at once).
	ChunksToServer int64
}

// chunkSize is the unit in which data is forwarded, and the unit of
// SetLatency.
const chunkSize = 32 << 10

// NewProxy starts a proxy on a free 127.0.0.1 port forwarding to target
// (host:port, which must be a loopback address). It is closed when the
// test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	host, _, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatalf("proxy: target %q: %v", target, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		t.Fatalf("proxy: target %q is not a loopback address", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: listen: %v", err)
	}
	p := &Proxy{
		target: target,
		ln:     ln,
		conns:  make(map[*proxyConn]struct{}),
		idle:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	close(p.idle) // nothing open yet
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.Close)
	return p
}

// Addr is the host:port clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the host:port the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// SetLatency delays every chunk of data (one read of up to 32 KiB) by d
// before it is forwarded, in both directions and on every connection. A
// request-reply exchange so costs at least 2d, and one connection moves
// at most 32 KiB per d in each direction. Zero turns it off.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// Refuse, when on, resets every new connection at once without reaching
// the target, as a server that is down (the client sees a reset, not
// "connection refused"). Open connections are not touched: see DropAll.
func (p *Proxy) Refuse(on bool) { p.refuse.Store(on) }

// DropAll resets every open connection now, on both sides.
func (p *Proxy) DropAll() {
	for _, c := range p.snapshot() {
		if c.reset() {
			p.dropped.Add(1)
		}
	}
}

// FailEvery makes every n-th connection accepted from now on fail,
// starting with the first: the 1st, the (n+1)-th, the (2n+1)-th and so on.
// A failing connection is reset once it has forwarded FailAfter bytes in
// both directions together (at once when that is 0). Starting with the
// first new connection makes the fault certain for a client that opens
// one connection and keeps it. n <= 0 turns it off.
func (p *Proxy) FailEvery(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failEvery, p.failBase = int64(n), p.accepted.Load()
}

// FailAfter sets how many bytes a connection chosen by FailEvery forwards
// before it is reset; it applies to connections accepted from then on.
func (p *Proxy) FailAfter(bytes int64) { p.failAfter.Store(max(bytes, 0)) }

// CorruptEvery makes every n-th connection accepted from now on, starting
// with the first, flip one byte in transit: the byte at offset at of the
// data it forwards in both directions together (counted as for
// FailAfter; a connection that ends sooner is not changed). The data is
// otherwise forwarded as it is, so a protocol that authenticates its
// traffic (TLS) must notice and fail the connection, and one that does
// not passes the change on. n <= 0 turns it off.
func (p *Proxy) CorruptEvery(n int, at int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.corruptEvery, p.corruptAt, p.corruptBase = int64(n), max(at, 0), p.accepted.Load()
}

// Stats returns the counters.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	open := int64(len(p.conns))
	p.mu.Unlock()
	return ProxyStats{
		Accepted: p.accepted.Load(), Refused: p.refused.Load(), Failed: p.failed.Load(), Dropped: p.dropped.Load(),
		Corrupted:     p.corrupted.Load(),
		Open:          open,
		BytesToServer: p.toServer.Load(), BytesToClient: p.toClient.Load(),
		ChunksToServer: p.chunksToServer.Load(),
	}
}

// WaitIdle waits until no connection is open, or until timeout. It
// reports whether the proxy became idle.
func (p *Proxy) WaitIdle(timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		idle := p.idle
		p.mu.Unlock()
		select {
		case <-idle:
			// A new connection may have opened since: check again.
			p.mu.Lock()
			n := len(p.conns)
			p.mu.Unlock()
			if n == 0 {
				return true
			}
		case <-timer.C:
			return false
		}
	}
}

// Close stops accepting, resets every open connection and waits for the
// proxy's goroutines to end. It may be called more than once.
func (p *Proxy) Close() {
	p.once.Do(func() {
		close(p.done)
		_ = p.ln.Close()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		for _, c := range p.snapshot() {
			c.reset()
		}
		p.wg.Wait()
	})
}

func (p *Proxy) snapshot() []*proxyConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	return out
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient accept failure (EMFILE and the like).
			select {
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		n := p.accepted.Add(1)
		if p.refuse.Load() {
			p.refused.Add(1)
			resetConn(nc)
			continue
		}
		c := &proxyConn{client: nc, cutAfter: -1, corruptAt: -1, done: make(chan struct{})}
		p.mu.Lock()
		if every := p.failEvery; every > 0 && (n-p.failBase-1)%every == 0 {
			c.cutAfter = p.failAfter.Load()
		}
		if every := p.corruptEvery; every > 0 && (n-p.corruptBase-1)%every == 0 {
			c.corruptAt = p.corruptAt
		}
		if p.closed {
			p.mu.Unlock()
			resetConn(nc)
			return
		}
		if len(p.conns) == 0 {
			p.idle = make(chan struct{})
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve connects c to the target and forwards both ways until either
// side closes or the connection is reset.
func (p *Proxy) serve(c *proxyConn) {
	defer p.wg.Done()
	defer p.forget(c)
	if c.cutAfter == 0 {
		p.failed.Add(1)
		c.reset()
		return
	}
	// The dial ends early when the connection is dropped meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-c.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	up, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.target)
	cancel()
	<-watched
	if err != nil {
		c.reset()
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		resetConn(up)
		return
	}
	c.server = up
	c.mu.Unlock()

	var inner sync.WaitGroup
	inner.Add(1)
	go func() {
		defer inner.Done()
		p.pipe(c, up, c.client, &p.toServer, &p.chunksToServer)
	}()
	p.pipe(c, c.client, up, &p.toClient, nil)
	inner.Wait()
}

func (p *Proxy) forget(c *proxyConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	if len(p.conns) == 0 {
		close(p.idle)
	}
}

// pipe copies src to dst in chunks, applying the latency and the cut of
// c. When src ends, both sides are closed (a plain close: FIN); when a
// write fails or the cut is reached, both are reset.
func (p *Proxy) pipe(c *proxyConn, dst, src net.Conn, bytes, chunks *atomic.Int64) {
	buf := make([]byte, chunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.latency.Load()); d > 0 {
				timer := time.NewTimer(d)
				select {
				case <-timer.C:
				case <-c.done:
					timer.Stop()
					return
				}
			}
			if c.cutAfter > 0 && c.forwarded.Add(int64(n)) > c.cutAfter {
				if c.reset() {
					p.failed.Add(1)
				}
				return
			}
			if c.corruptAt >= 0 {
				// Each chunk owns the range of offsets it adds.
				end := c.seen.Add(int64(n))
				if start := end - int64(n); start <= c.corruptAt && c.corruptAt < end {
					buf[c.corruptAt-start] ^= 0x5a
					p.corrupted.Add(1)
				}
			}
			// Counted before the write, so that a peer that has
			// received data finds it counted.
			bytes.Add(int64(n))
			if chunks != nil {
				chunks.Add(1)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				c.reset()
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				c.close()
			} else {
				c.reset()
			}
			return
		}
	}
}

// proxyConn is one client connection and its connection to the target.
type proxyConn struct {
	client    net.Conn
	cutAfter  int64 // reset after this many bytes; -1 never, 0 at once
	forwarded atomic.Int64
	corruptAt int64        // flip the byte at this offset; -1 never
	seen      atomic.Int64 // bytes passed on, for corruptAt

	mu     sync.Mutex
	server net.Conn // nil until dialled
	closed bool
	done   chan struct{}
}

// close closes both sides gracefully. It reports whether it was the one
// that ended the connection.
func (c *proxyConn) close() bool { return c.end(func(nc net.Conn) { _ = nc.Close() }) }

// reset resets both sides. It reports whether it was the one that ended
// the connection.
func (c *proxyConn) reset() bool { return c.end(resetConn) }

func (c *proxyConn) end(how func(net.Conn)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.closed = true
	close(c.done)
	how(c.client)
	if c.server != nil {
		how(c.server)
	}
	return true
}

// resetConn closes nc with an RST instead of a FIN.
func resetConn(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}
