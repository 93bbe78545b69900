package restserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bunkerbackup/bunker/internal/storage/local"
)

// Defaults of Options.
const (
	DefaultMaxRequestSize  = 256 << 20
	DefaultMaxConcurrent   = 64
	DefaultUploadMemory    = 1 << 30
	DefaultMinTransferRate = 8 << 10
	DefaultTransferWindow  = 30 * time.Second
	DefaultHeaderTimeout   = 30 * time.Second
	DefaultIdleTimeout     = 2 * time.Minute
	DefaultShutdownTimeout = 30 * time.Second
	// queueWait is how long a request waits for one of the
	// MaxConcurrent slots before it is refused with 503.
	queueWait = 10 * time.Second
)

// Options configure a Server. Zero values mean the defaults.
type Options struct {
	// Dir holds the repositories (required); it is created if missing.
	Dir string
	// Users checks credentials (LoadHtpasswd). Nil means no
	// authentication, which NoAuth must confirm.
	Users  *Users
	NoAuth bool
	// PrivateRepos lets user U reach only the repositories under /U/.
	PrivateRepos bool
	// AppendOnly refuses DELETE (except of sessions/ objects), overwriting
	// an object with different content and writing maint/, with 403, and
	// checks object names per type: content-addressed objects must be
	// named by the BLAKE3-256 of their bytes (403), sessions s-<24 hex>,
	// anything else is 400 (see the package documentation).
	AppendOnly bool
	// MaxRequestSize is the largest object a POST may carry (default
	// 256 MiB); larger ones get 413.
	MaxRequestSize int64
	// MaxConcurrent caps the requests served at once (default 64);
	// requests beyond wait up to 10 s, then get 503. With users, one user
	// holds at most half of them (rounded up); its requests beyond get
	// 503 at once.
	MaxConcurrent int
	// UploadMemory caps the bytes of request bodies held in memory at
	// once (default the larger of 1 GiB and 4 × MaxRequestSize). Memory
	// is taken as body bytes arrive: a buffer starts at 64 KiB and
	// doubles up to the Content-Length, the old and new buffer both
	// counted while it grows, so a body of n bytes holds less than 2n.
	UploadMemory int64
	// UserUploadMemory caps the share of UploadMemory that the requests
	// of one user hold at once (default the larger of UploadMemory/4 and
	// 2 × MaxRequestSize). It must be at least 2 × MaxRequestSize (room for
	// one largest body while it grows) and at most UploadMemory/2, so no
	// user can take all of it. Without users (NoAuth) every client is the
	// same user. A request that cannot get memory for 10 s gets 503.
	UserUploadMemory int64
	// MinTransferRate is the slowest a request body or a reply may move,
	// in bytes per second (default 8 KiB/s), measured over a sliding
	// TransferWindow (default 30 s), first when the transfer is one window
	// old: a slower transfer is cut off (an upload with 408). Time the
	// server waits for upload memory does not count.
	MinTransferRate int64
	TransferWindow  time.Duration
	// MetricsNoAuth serves /metrics without credentials.
	MetricsNoAuth bool

	// NoTLS serves plain HTTP/1.1 and h2c, for use behind a proxy that
	// terminates TLS. Otherwise TLSCert and TLSKey name PEM files, or,
	// when both are empty, a self-signed certificate kept in
	// Dir/.bunker-serve/ is used (made on first start, for localhost,
	// the loopback addresses and Hosts).
	NoTLS           bool
	TLSCert, TLSKey string
	Hosts           []string

	// HeaderTimeout bounds reading a request's headers (default 30 s),
	// IdleTimeout an idle keep-alive connection (default 2 min), and
	// ShutdownTimeout the wait for in-flight requests when Serve's
	// context ends (default 30 s).
	HeaderTimeout, IdleTimeout, ShutdownTimeout time.Duration

	// Logger receives one debug line per request and warnings; nil
	// discards.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Validate checks the options and fills in the defaults.
func (o *Options) Validate() error {
	switch {
	case o.Dir == "":
		return errors.New("no directory to serve (--path)")
	case o.Users == nil && !o.NoAuth:
		return errors.New("no users: give an htpasswd file (--htpasswd), or --no-auth to serve without authentication")
	case o.Users != nil && o.NoAuth:
		return errors.New("--no-auth and --htpasswd exclude each other")
	case o.PrivateRepos && o.Users == nil:
		return errors.New("--private-repos needs users (--htpasswd)")
	case o.NoTLS && (o.TLSCert != "" || o.TLSKey != ""):
		return errors.New("--no-tls excludes --tls-cert and --tls-key")
	case (o.TLSCert == "") != (o.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case o.MaxRequestSize < 0 || o.MaxConcurrent < 0 || o.UploadMemory < 0 || o.UserUploadMemory < 0 ||
		o.MinTransferRate < 0 || o.TransferWindow < 0 ||
		o.HeaderTimeout < 0 || o.IdleTimeout < 0 || o.ShutdownTimeout < 0:
		return errors.New("negative limit")
	}
	if o.MaxRequestSize == 0 {
		o.MaxRequestSize = DefaultMaxRequestSize
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.MaxRequestSize > 1<<40 {
		return fmt.Errorf("max request size %d is above 1 TiB", o.MaxRequestSize)
	}
	if o.UploadMemory == 0 {
		o.UploadMemory = max(DefaultUploadMemory, 4*o.MaxRequestSize)
	}
	if o.UserUploadMemory == 0 {
		o.UserUploadMemory = max(o.UploadMemory/4, 2*o.MaxRequestSize)
	}
	switch {
	case o.UserUploadMemory < 2*o.MaxRequestSize:
		return fmt.Errorf("upload memory per user (%d bytes) must be at least twice the largest request (%d bytes): a body's buffer doubles as it grows", o.UserUploadMemory, o.MaxRequestSize)
	case o.UserUploadMemory > o.UploadMemory/2:
		return fmt.Errorf("upload memory (%d bytes) must be at least twice the share of one user (%d bytes; at least twice the largest request, %d bytes), so that no user can take all of it", o.UploadMemory, o.UserUploadMemory, o.MaxRequestSize)
	}
	if o.MinTransferRate == 0 {
		o.MinTransferRate = DefaultMinTransferRate
	}
	if o.TransferWindow == 0 {
		o.TransferWindow = DefaultTransferWindow
	}
	if o.HeaderTimeout == 0 {
		o.HeaderTimeout = DefaultHeaderTimeout
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Server serves the repositories in a directory over the bunker REST
// protocol (see the package documentation).
type Server struct {
	opts        Options
	dir         string
	log         *slog.Logger
	m           *metrics
	metricsH    http.Handler
	slots       chan struct{}
	mem         *uploadMemory
	cert        *tls.Certificate
	fingerprint string
	newCert     bool

	mu        sync.Mutex
	repos     map[string]*local.Backend
	userSlots map[string]int // slots held per user
}

// New checks the options, creates Dir if missing and loads (or makes)
// the TLS certificate.
func New(opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("serve %s: %w", opts.Dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("serve %s: %w", opts.Dir, err)
	}
	s := &Server{
		opts:      opts,
		dir:       dir,
		log:       opts.Logger,
		m:         newMetrics(),
		slots:     make(chan struct{}, opts.MaxConcurrent),
		mem:       newUploadMemory(opts.UploadMemory, opts.UserUploadMemory),
		repos:     map[string]*local.Backend{},
		userSlots: map[string]int{},
	}
	s.metricsH = promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{})
	if !opts.NoTLS {
		var c tls.Certificate
		if opts.TLSCert != "" {
			c, err = loadCert(opts.TLSCert, opts.TLSKey)
		} else {
			c, s.newCert, err = selfSignedCert(dir, opts.Hosts, opts.Now())
		}
		if err != nil {
			return nil, err
		}
		s.cert = &c
		s.fingerprint = Fingerprint(c.Certificate[0])
	}
	return s, nil
}

// Fingerprint returns the SHA-256 fingerprint of the server certificate
// ("sha256:<hex>"), or "" without TLS.
func (s *Server) Fingerprint() string { return s.fingerprint }

// NewCertificate reports whether New made a new self-signed certificate
// (whose fingerprint clients do not know yet).
func (s *Server) NewCertificate() bool { return s.newCert }

// TLS reports whether the server speaks TLS.
func (s *Server) TLS() bool { return s.cert != nil }

// Serve serves on ln until ctx ends, then stops accepting connections,
// lets the requests in flight finish (for at most ShutdownTimeout, then
// it cuts them off) and returns nil. Requests are not canceled by ctx. It
// returns an error only when serving fails. ln is closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.HeaderTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: 250,
		},
	}
	if s.cert != nil {
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*s.cert}}
	} else {
		hs.Protocols = new(http.Protocols)
		hs.Protocols.SetHTTP1(true)
		hs.Protocols.SetUnencryptedHTTP2(true)
	}
	errc := make(chan error, 1)
	go func() {
		if s.cert != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: waiting for requests in flight", "timeout", s.opts.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown: requests still in flight were cut off", "error", err)
		_ = hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	}
	return nil
}
