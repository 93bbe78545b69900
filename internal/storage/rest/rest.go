package rest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/objstore"
)

// Backend is a storage.Backend on a bunker REST server. It is safe for
// concurrent use.
type Backend struct {
	cfg       Config
	loc       string
	transport *http.Transport
	client    *http.Client
	// features holds the server's features (featureBits), refreshed from
	// the Bunker-Features header of every reply.
	features atomic.Uint32
}

var _ storage.Backend = (*Backend)(nil)

const (
	bitConditionalCreate = 1 << iota
	bitAppendOnly
	bitKnown
)

// Open connects to the repository of cfg. It asks the server for its
// features, which fails when the server is unreachable or refuses the
// credentials (ErrAuth) or the path (ErrPermission); a repository that
// does not exist yet is no error here.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.fetchInfo(ctx); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// Create creates the repository of cfg on the server (an existing
// repository without a config is fine) and opens it. It fails wrapping
// storage.ErrExists when the repository already has a config.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	err = b.roundTrip(ctx, "create repository", storage.Handle{}, http.MethodPost, b.repoPrefix()+"/?create=true", nil, nil, func(resp *http.Response) error {
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
			return statusErr(resp)
		}
		return nil
	})
	if err == nil {
		err = b.fetchInfo(ctx)
	}
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

func newBackend(cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, storage.Permanent(err)
	}
	if cfg.ResponseTimeout <= 0 {
		cfg.ResponseTimeout = 2 * time.Minute
	}
	loc := cfg.location()
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, storage.Permanent(fmt.Errorf("%s: CA certificates: %w", loc, err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, storage.Permanent(fmt.Errorf("%s: CA certificates: no PEM certificate in %s", loc, cfg.CAFile))
		}
		tlsConf.RootCAs = pool
	}
	if cfg.Fingerprint != nil {
		want := cfg.Fingerprint
		// The pin replaces chain and name verification: the self-signed
		// certificate of "bunker serve" names no CA.
		tlsConf.InsecureSkipVerify = true
		tlsConf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &pinError{want: want}
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], want) != 1 {
				return &pinError{want: want, got: got[:]}
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: cfg.ResponseTimeout,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
	}
	if cfg.Dial != nil {
		tr.DialContext, tr.Proxy = cfg.Dial, nil
	}
	return &Backend{
		cfg:       cfg,
		loc:       loc,
		transport: tr,
		client: &http.Client{
			Transport: tr,
			// The protocol has no redirects; following one could send
			// the credentials elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// pinError is a server certificate that does not match the pinned
// fingerprint.
type pinError struct{ want, got []byte }

func (e *pinError) Error() string {
	if e.got == nil {
		return "server sent no certificate"
	}
	return fmt.Sprintf("server certificate has fingerprint %s, want %s (%s)", FormatFingerprint(e.got), FormatFingerprint(e.want), EnvFingerprint)
}

// Location returns "rest:" and the URL, with the user but never the
// password.
func (b *Backend) Location() string { return b.loc }

// Features reports what the server said in its last reply.
func (b *Backend) Features() storage.Features {
	f := b.features.Load()
	return storage.Features{
		ConditionalCreate: f&bitConditionalCreate != 0,
		AppendOnly:        f&bitAppendOnly != 0,
	}
}

// Close drops the idle connections.
func (b *Backend) Close() error {
	b.transport.CloseIdleConnections()
	return nil
}

// repoPrefix is the URL path of the repository, "" for "/".
func (b *Backend) repoPrefix() string {
	if b.cfg.Repo == "/" {
		return ""
	}
	return b.cfg.Repo
}

// objectPath is the URL path of a valid handle.
func (b *Backend) objectPath(h storage.Handle) string {
	if h.Type == storage.ConfigFile {
		return b.repoPrefix() + "/config"
	}
	return b.repoPrefix() + "/" + string(h.Type) + "/" + h.Name
}

func (b *Backend) fetchInfo(ctx context.Context) error {
	return b.roundTrip(ctx, "open repository", storage.Handle{}, http.MethodGet, b.repoPrefix()+"/", nil, nil, func(resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			return statusErr(resp)
		}
		var info RepoInfo
		body := &objstore.ReplyReader{R: io.LimitReader(resp.Body, 1<<16)}
		if err := json.NewDecoder(body).Decode(&info); err != nil {
			return decodeErr("repository info", body, err)
		}
		if info.Protocol != ProtocolVersion {
			return storage.Permanent(fmt.Errorf("server speaks protocol version %d, this client %d", info.Protocol, ProtocolVersion))
		}
		var f uint32 = bitKnown
		if info.Features.ConditionalCreate {
			f |= bitConditionalCreate
		}
		if info.Features.AppendOnly {
			f |= bitAppendOnly
		}
		b.features.Store(f)
		return nil
	})
}

// noteFeatures refreshes the features from a reply's header.
func (b *Backend) noteFeatures(resp *http.Response) {
	v, ok := resp.Header[http.CanonicalHeaderKey(HeaderFeatures)]
	if !ok {
		return
	}
	var f uint32 = bitKnown
	for _, part := range strings.Split(strings.Join(v, ","), ",") {
		switch strings.TrimSpace(part) {
		case FeatureConditionalCreate:
			f |= bitConditionalCreate
		case FeatureAppendOnly:
			f |= bitAppendOnly
		}
	}
	b.features.Store(f)
}

// roundTrip sends one request and hands the reply to handle, then closes
// its body. Errors name the location, the operation and the object.
func (b *Backend) roundTrip(ctx context.Context, op string, h storage.Handle, method, path string, body io.Reader, header http.Header, handle func(*http.Response) error) error {
	what := op
	if h.Type != "" {
		what = op + " " + h.String()
	}
	u := *b.cfg.URL
	u.Path, u.RawQuery, _ = strings.Cut(path, "?")
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return storage.Permanent(fmt.Errorf("%s: %s: %w", b.loc, what, err))
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if b.cfg.User != "" {
		req.SetBasicAuth(b.cfg.User, b.cfg.Password)
	}
	req.Header.Set("User-Agent", "bunker-rest/1")
	if r, ok := body.(*guardedReader); ok {
		req.ContentLength = int64(r.r.Len())
		req.GetBody = r.reopen
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", b.loc, what, transportErr(err))
	}
	b.noteFeatures(resp)
	err = handle(resp)
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s: %s: %w", b.loc, what, err)
	}
	return nil
}

// transportErr strips the URL from a client error (the message names the
// location already), leaves out what net/http quotes of a reply that is
// not HTTP, and marks certificate failures permanent.
func transportErr(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	if objstore.IsNotHTTP(err) {
		return errNotHTTP{err}
	}
	var pe *pinError
	var ve *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce x509.CertificateInvalidError
	if errors.As(err, &pe) || errors.As(err, &ve) || errors.As(err, &ue) || errors.As(err, &he) || errors.As(err, &ce) {
		return storage.Permanent(err)
	}
	return err
}

// statusError is a reply with an unexpected status code.
type statusError struct {
	sentinel error // a storage sentinel, or nil
	code     int
	msg      string
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("server replied %d %s", e.code, http.StatusText(e.code))
	if e.msg != "" {
		s += ": " + e.msg
	}
	if e.sentinel != nil {
		s = e.sentinel.Error() + " (" + s + ")"
	}
	return s
}

func (e *statusError) Unwrap() error { return e.sentinel }

// statusErr maps an unexpected reply to an error: 404 ErrNotExist, 409 and
// 412 ErrExists, 403 ErrPermission, 401 ErrAuth, 507 ErrNoSpace, other 4xx
// permanent, 5xx (and 408, 429) transient. The message is the server's
// HeaderError, cleaned and bounded; the body is never quoted: the URL may
// lead to some other HTTP service (a proxy, or an internal service a
// tenant named to read it through our error messages).
func statusErr(resp *http.Response) error {
	// Drain a little, so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	e := &statusError{code: resp.StatusCode, msg: objstore.CleanText(resp.Header.Get(HeaderError), MaxErrorLen)}
	switch c := resp.StatusCode; {
	case c == http.StatusNotFound:
		e.sentinel = storage.ErrNotExist
	case c == http.StatusConflict, c == http.StatusPreconditionFailed:
		e.sentinel = storage.ErrExists
	case c == http.StatusForbidden:
		e.sentinel = storage.ErrPermission
	case c == http.StatusUnauthorized:
		e.sentinel = storage.ErrAuth
	case c == http.StatusInsufficientStorage:
		e.sentinel = storage.ErrNoSpace
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests:
		return e
	case c >= 400 && c < 500:
		return storage.Permanent(e)
	}
	return e
}

// guardedReader is a Save's request body. Once closed it never reads
// data again, so Save can return without the transport still holding the
// caller's buffer (the transport may read a body after Do returns).
type guardedReader struct {
	mu     sync.Mutex
	data   []byte
	r      *bytes.Reader
	closed bool
	others []*guardedReader // readers made by reopen, closed with this one
}

func newGuardedReader(data []byte) *guardedReader {
	return &guardedReader{data: data, r: bytes.NewReader(data)}
}

func (g *guardedReader) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errors.New("request body read after the request ended")
	}
	return g.r.Read(p)
}

// reopen is the request's GetBody, for transport-level retries.
func (g *guardedReader) reopen() (io.ReadCloser, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errors.New("request body reopened after the request ended")
	}
	n := newGuardedReader(g.data)
	g.others = append(g.others, n)
	return io.NopCloser(n), nil
}

// end stops all reads of data, waiting for one in progress.
func (g *guardedReader) end() {
	g.mu.Lock()
	g.closed = true
	others := g.others
	g.mu.Unlock()
	for _, o := range others {
		o.end()
	}
}

// Save uploads data with a POST; IfNotExists sends "If-None-Match: *".
// opts.RetainUntil is ignored (the server has no object lock).
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if err := ValidName(h); err != nil {
		return storage.Permanent(fmt.Errorf("%s: save: %w", b.loc, err))
	}
	// An empty body must be http.NoBody: a zero ContentLength with
	// another reader means "unknown length" to net/http.
	var body io.Reader = http.NoBody
	if len(data) > 0 {
		g := newGuardedReader(data)
		defer g.end()
		body = g
	}
	header := http.Header{"Content-Type": {"application/octet-stream"}}
	if opts.IfNotExists {
		header.Set("If-None-Match", "*")
	}
	return b.roundTrip(ctx, "save", h, http.MethodPost, b.objectPath(h), body, header, func(resp *http.Response) error {
		switch resp.StatusCode {
		case http.StatusOK, http.StatusCreated, http.StatusNoContent:
			return nil
		}
		return statusErr(resp)
	})
}

// Load streams a range of an object to fn: a GET with a Range header
// unless the whole object is wanted.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := ValidName(h); err != nil {
		return storage.Permanent(fmt.Errorf("%s: load: %w", b.loc, err))
	}
	if length < 0 || offset < 0 {
		return storage.Permanent(fmt.Errorf("%s: load %v: invalid range: offset %d, length %d", b.loc, h, offset, length))
	}
	ranged := length != 0 || offset != 0
	header := http.Header{}
	if ranged {
		r := "bytes=" + strconv.FormatInt(offset, 10) + "-"
		if length > 0 {
			r += strconv.FormatInt(offset+int64(length)-1, 10)
		}
		header.Set("Range", r)
	}
	return b.roundTrip(ctx, "load", h, http.MethodGet, b.objectPath(h), nil, header, func(resp *http.Response) error {
		switch {
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 512))
			return storage.Permanent(fmt.Errorf("range offset %d, length %d is past the end of the object (server replied 416)", offset, length))
		case !ranged && resp.StatusCode == http.StatusOK:
		case ranged && resp.StatusCode == http.StatusPartialContent:
			start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
			if !ok || start != offset {
				return fmt.Errorf("server sent range %q for offset %d", objstore.CleanText(resp.Header.Get("Content-Range"), 64), offset)
			}
			if length > 0 && resp.ContentLength != int64(length) {
				return fmt.Errorf("server sent %d bytes for a range of %d", resp.ContentLength, length)
			}
		default:
			return statusErr(resp)
		}
		return fn(resp.Body)
	})
}

// contentRangeStart returns the first byte of "bytes FIRST-LAST/SIZE".
func contentRangeStart(s string) (int64, bool) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}

// Stat sends a HEAD request.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	if err := ValidName(h); err != nil {
		return storage.FileInfo{}, storage.Permanent(fmt.Errorf("%s: stat: %w", b.loc, err))
	}
	var fi storage.FileInfo
	err := b.roundTrip(ctx, "stat", h, http.MethodHead, b.objectPath(h), nil, nil, func(resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			return statusErr(resp)
		}
		if resp.ContentLength < 0 {
			return errors.New("server sent no Content-Length")
		}
		mtime, err := modTime(resp.Header)
		if err != nil {
			return err
		}
		fi = storage.FileInfo{Name: h.Name, Size: resp.ContentLength, ModTime: mtime}
		return nil
	})
	return fi, err
}

// modTime reads Bunker-Mtime, or else Last-Modified.
func modTime(hd http.Header) (time.Time, error) {
	if v := hd.Get(HeaderModTime); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("bad %s header %q", HeaderModTime, objstore.CleanText(v, 64))
		}
		return t, nil
	}
	t, err := http.ParseTime(hd.Get("Last-Modified"))
	if err != nil {
		return time.Time{}, errors.New("server sent no modification time")
	}
	return t, nil
}

// errNotJSON: a reply that should be JSON is well-formed JSON of another
// shape.
var errNotJSON = errors.New("unexpected JSON value")

// errNotBunker: a reply is not what a bunker REST server sends.
var errNotBunker = errors.New("the reply is not of the bunker REST protocol (is the URL a bunker server?)")

// decodeErr is the error of decoding the JSON body of a 200 reply as
// what. A failed read is returned as it is, and a body that ends early (a
// server whose listing failed midway) says so. Any other failure means
// that something other than a bunker server answered (a proxy's page, or
// another service); the decoder's message is left out, as it quotes bytes
// of the body. All stay transient: a proxy may answer so for a while.
func decodeErr(what string, body *objstore.ReplyReader, err error) error {
	switch {
	case body.Err != nil:
		return fmt.Errorf("read %s: %w", what, body.Err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("decode %s: %w", what, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("decode %s: %w", what, errNotBunker)
}

// List streams the JSON listing of a type. The config is listed by a Stat.
func (b *Backend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	switch t {
	case storage.ConfigFile:
		return objstore.ListConfig(ctx, b.Stat, fn)
	case storage.KeyFile, storage.PackFile, storage.IndexFile, storage.SnapshotFile, storage.SessionFile, storage.MaintFile:
	default:
		return storage.Permanent(fmt.Errorf("%s: list %q: unknown file type", b.loc, t))
	}
	var stop error
	err := b.roundTrip(ctx, "list", storage.Handle{Type: t}, http.MethodGet, b.repoPrefix()+"/"+string(t)+"/", nil, nil, func(resp *http.Response) error {
		if resp.StatusCode != http.StatusOK {
			return statusErr(resp)
		}
		body := &objstore.ReplyReader{R: resp.Body}
		dec := json.NewDecoder(body)
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			if err == nil {
				err = errNotJSON
			}
			return decodeErr("listing", body, err)
		}
		for i := 0; dec.More(); i++ {
			var e ListEntry
			if err := dec.Decode(&e); err != nil {
				return decodeErr(fmt.Sprintf("listing entry %d", i), body, err)
			}
			if ValidName(storage.Handle{Type: t, Name: e.Name}) != nil {
				// The name is not quoted: it is whatever the server sent.
				return storage.Permanent(fmt.Errorf("decode listing entry %d: invalid object name", i))
			}
			if err := fn(storage.FileInfo{Name: e.Name, Size: e.Size, ModTime: e.MTime}); err != nil {
				stop = err
				return err
			}
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
			if err == nil {
				err = errNotJSON
			}
			return decodeErr("listing", body, err)
		}
		return nil
	})
	if stop != nil {
		return stop // the callback's error, as it is
	}
	return err
}

// Remove sends a DELETE; a missing object is no error.
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	if err := ValidName(h); err != nil {
		return storage.Permanent(fmt.Errorf("%s: remove: %w", b.loc, err))
	}
	return b.roundTrip(ctx, "remove", h, http.MethodDelete, b.objectPath(h), nil, nil, func(resp *http.Response) error {
		switch resp.StatusCode {
		case http.StatusOK, http.StatusNoContent, http.StatusNotFound:
			return nil
		}
		return statusErr(resp)
	})
}
