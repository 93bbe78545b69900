package daemon

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits of the daemon's HTTP server. Whoever reaches the listener can
// open connections and send headers before any token is looked at, so
// what one connection may hold, for how long, and how many there are
// is bounded: together they bound the memory an unauthenticated client
// can make the daemon spend on HTTP.
const (
	// MaxConnections is how many connections the server holds at once;
	// more wait in the kernel's accept queue until one closes. A
	// dashboard and a Prometheus scraper need a handful.
	MaxConnections = 256
	// MaxHeaderBytes bounds a request's header (net/http's default is
	// 1 MiB, per connection). A browser's headers and a token fit.
	MaxHeaderBytes = 64 << 10
	// HeaderTimeout is how long a client may take to send its header.
	HeaderTimeout = 10 * time.Second
	// IdleTimeout closes a keep-alive connection that sends nothing.
	IdleTimeout = 2 * time.Minute
	// WriteTimeout bounds a request from its header to the end of its
	// answer: a snapshot listing of a large remote repository may take
	// minutes (it gives up after 10), so it is long; it stops a client
	// that never reads its answer from holding a connection forever.
	WriteTimeout = 15 * time.Minute
)

// NewServer returns the HTTP server for h with the limits above. The
// API reads no request body, so ReadTimeout is the header timeout
// plus a little. Serve it on LimitListener(ln, MaxConnections).
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: HeaderTimeout,
		ReadTimeout:       HeaderTimeout + 5*time.Second,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
	if log != nil {
		// Failed handshakes and reads are the clients' business.
		s.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	}
	return s
}

// LimitListener returns a listener that holds at most n accepted
// connections open at once: Accept waits until one of them is closed.
func LimitListener(ln net.Listener, n int) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{} // closed by Close: a waiting Accept returns
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitConn gives its slot back on the first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
