package restserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/local"
	"github.com/bunkerbackup/bunker/internal/storage/rest"
)

// maxPathLen bounds a request path.
const maxPathLen = 2048

// The kinds of request target.
const (
	targetRepo   = iota // <repo>/
	targetList          // <repo>/<type>/
	targetObject        // <repo>/config, <repo>/<type>/<name>
)

// target is a parsed request path.
type target struct {
	kind int
	repo []string       // repository path segments (none for "/")
	h    storage.Handle // the object; for a listing only Type
}

// label is the object type for metrics.
func (t target) label() string {
	if t.kind == targetRepo {
		return "repo"
	}
	return string(t.h.Type)
}

// parsePath parses and checks a request path. Anything that is not a
// well-formed repository, listing or object path is an error (400): a
// segment outside [A-Za-z0-9._-], one starting with a dot (which covers
// "." and ".."), empty segments, overlong names.
func parsePath(p string) (target, error) {
	if len(p) > maxPathLen {
		return target{}, fmt.Errorf("path longer than %d bytes", maxPathLen)
	}
	if !strings.HasPrefix(p, "/") {
		return target{}, errors.New("path does not start with /")
	}
	slash := strings.HasSuffix(p, "/")
	trimmed := strings.TrimSuffix(p[1:], "/")
	var segs []string
	if trimmed != "" {
		segs = strings.Split(trimmed, "/")
	}
	n := len(segs)
	var t target
	switch {
	case n >= 1 && segs[n-1] == string(storage.ConfigFile) && !slash:
		t = target{kind: targetObject, repo: segs[:n-1], h: storage.Handle{Type: storage.ConfigFile}}
	case n >= 1 && rest.IsTypeSegment(segs[n-1]):
		t = target{kind: targetList, repo: segs[:n-1], h: storage.Handle{Type: storage.FileType(segs[n-1])}}
	case n >= 2 && rest.IsTypeSegment(segs[n-2]) && !slash:
		t = target{kind: targetObject, repo: segs[:n-2], h: storage.Handle{Type: storage.FileType(segs[n-2]), Name: segs[n-1]}}
		if err := rest.ValidName(t.h); err != nil {
			return target{}, err
		}
	case slash:
		t = target{kind: targetRepo, repo: segs}
	default:
		return target{}, errors.New("not a repository (<repo>/), listing (<repo>/<type>/) or object path")
	}
	if len(t.repo) > rest.MaxRepoDepth {
		return target{}, fmt.Errorf("repository path has more than %d segments", rest.MaxRepoDepth)
	}
	for _, s := range t.repo {
		if err := rest.ValidSegment(s); err != nil {
			return target{}, err
		}
	}
	return t, nil
}

// recorder remembers the status and counts the body bytes of a reply.
type recorder struct {
	http.ResponseWriter
	status int
	n      int64
	head   bool // a HEAD reply, whose body net/http discards
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	if !r.head {
		r.n += int64(n)
	}
	return n, err
}

// Unwrap gives http.ResponseController the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

// ServeHTTP serves one request of the protocol, or /metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()
	rec := &recorder{ResponseWriter: w, head: r.Method == http.MethodHead}
	body := &countingBody{ReadCloser: r.Body}
	r.Body = body
	user, label := s.route(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	d := time.Since(start)
	method := r.Method
	if !methods[method] {
		method = "other"
	}
	s.m.requests.WithLabelValues(method, label, strconv.Itoa(rec.status)).Inc()
	s.m.duration.WithLabelValues(method, label).Observe(d.Seconds())
	s.m.bytesIn.WithLabelValues(label).Add(float64(body.n))
	s.m.bytesOut.WithLabelValues(label).Add(float64(rec.n))
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", rec.status),
		slog.Int64("in", body.n), slog.Int64("out", rec.n), slog.Duration("duration", d),
		slog.String("user", user), slog.String("remote", r.RemoteAddr), slog.String("proto", r.Proto))
}

// methods lists the metric labels of known methods; others are "other".
var methods = map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodDelete: true}

// route authenticates, parses and dispatches a request; it returns the
// user and the metric label of the object type.
func (s *Server) route(w http.ResponseWriter, r *http.Request) (user, label string) {
	feats := rest.FeatureConditionalCreate
	if s.opts.AppendOnly {
		feats += ", " + rest.FeatureAppendOnly
	}
	w.Header().Set(rest.HeaderFeatures, feats)
	if r.URL.Path == "/metrics" {
		if !s.opts.MetricsNoAuth {
			var ok bool
			if user, ok = s.authenticate(w, r); !ok {
				return user, "metrics"
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return user, "metrics"
		}
		s.metricsH.ServeHTTP(w, r)
		return user, "metrics"
	}
	if !s.acquire(w, r) {
		return "", "overload"
	}
	defer func() { <-s.slots }()
	user, ok := s.authenticate(w, r)
	if !ok {
		return user, "unauthenticated"
	}
	if !s.takeUserSlot(user) {
		s.m.rejected.Inc()
		w.Header().Set("Retry-After", "1")
		replyError(w, "too many requests in flight for this user", http.StatusServiceUnavailable)
		return user, "overload"
	}
	defer s.giveUserSlot(user)
	t, err := parsePath(r.URL.Path)
	if err != nil {
		replyError(w, "bad request path: "+err.Error(), http.StatusBadRequest)
		return user, "invalid"
	}
	if s.opts.PrivateRepos && (len(t.repo) == 0 || t.repo[0] != user) {
		replyError(w, "forbidden: with private repositories a user reaches only /"+user+"/...", http.StatusForbidden)
		return user, t.label()
	}
	switch t.kind {
	case targetRepo:
		s.serveRepo(w, r, t)
	case targetList:
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			break
		}
		s.serveList(w, r, t)
	case targetObject:
		switch r.Method {
		case http.MethodGet:
			s.serveLoad(w, r, t)
		case http.MethodHead:
			s.serveStat(w, r, t)
		case http.MethodPost:
			s.serveSave(w, r, t, user)
		case http.MethodDelete:
			s.serveRemove(w, r, t)
		default:
			methodNotAllowed(w, "GET, HEAD, POST, DELETE")
		}
	}
	return user, t.label()
}

// acquire takes one of the MaxConcurrent slots, waiting up to queueWait;
// it replies 503 and returns false when it cannot.
func (s *Server) acquire(w http.ResponseWriter, r *http.Request) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(queueWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
		s.m.rejected.Inc()
		w.Header().Set("Retry-After", "1")
		replyError(w, "too many requests in flight", http.StatusServiceUnavailable)
	case <-r.Context().Done():
		replyError(w, "request canceled", http.StatusServiceUnavailable)
	}
	return false
}

// takeUserSlot counts a slot for user; it reports false when the user
// already holds half of the MaxConcurrent slots (rounded up), so that
// one user cannot hold them all. Without users there is nothing to share.
func (s *Server) takeUserSlot(user string) bool {
	if s.opts.Users == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userSlots[user] >= (s.opts.MaxConcurrent+1)/2 {
		return false
	}
	s.userSlots[user]++
	return true
}

func (s *Server) giveUserSlot(user string) {
	if s.opts.Users == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userSlots[user]--; s.userSlots[user] <= 0 {
		delete(s.userSlots, user)
	}
}

// authenticate checks the basic credentials; on failure it replies 401.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	if s.opts.Users == nil {
		return "", true
	}
	user, pw, ok := r.BasicAuth()
	if ok && s.opts.Users.Check(user, pw) {
		return user, true
	}
	s.m.authFails.Inc()
	w.Header().Set("WWW-Authenticate", `Basic realm="bunker", charset="UTF-8"`)
	replyError(w, "authentication required", http.StatusUnauthorized)
	return "", false
}

// replyError answers with an error status and msg: in the body, for
// people and older clients, and in the rest.HeaderError header, which
// marks the reply as this server's. The client quotes messages only from
// that header, so that an error can never carry the body of some other
// HTTP service that its URL may lead to.
func replyError(w http.ResponseWriter, msg string, code int) {
	w.Header().Set(rest.HeaderError, headerText(msg))
	http.Error(w, msg, code)
}

// headerText makes msg a header value: printable ASCII (others become
// "?"), at most rest.MaxErrorLen bytes.
func headerText(msg string) string {
	b := []byte(msg)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	if len(b) > rest.MaxErrorLen {
		b = append(b[:rest.MaxErrorLen-3], "..."...)
	}
	return string(b)
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	replyError(w, "method not allowed", http.StatusMethodNotAllowed)
}

// errNoRepo: the repository was never created.
var errNoRepo = errors.New("repository does not exist")

func (s *Server) repoDir(segs []string) string {
	return filepath.Join(append([]string{s.dir}, segs...)...)
}

// repo returns the backend of an existing repository (one whose
// directory has the keys/ subdirectory that local.Create makes), or
// errNoRepo.
func (s *Server) repo(segs []string) (*local.Backend, error) {
	key := "/" + strings.Join(segs, "/")
	s.mu.Lock()
	be := s.repos[key]
	s.mu.Unlock()
	if be != nil {
		return be, nil
	}
	dir := s.repoDir(segs)
	if fi, err := os.Stat(filepath.Join(dir, string(storage.KeyFile))); err != nil || !fi.IsDir() {
		return nil, errNoRepo
	}
	be, err := local.New(dir)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.repos[key]; old != nil {
		return old, nil
	}
	s.repos[key] = be
	return be, nil
}

// serveRepo: POST ?create=true creates the repository; GET and HEAD
// return its RepoInfo.
func (s *Server) serveRepo(w http.ResponseWriter, r *http.Request, t target) {
	switch r.Method {
	case http.MethodPost:
		if r.URL.Query().Get("create") != "true" {
			replyError(w, "POST to a repository needs ?create=true", http.StatusBadRequest)
			return
		}
		key := "/" + strings.Join(t.repo, "/")
		be, err := local.Create(s.repoDir(t.repo))
		if errors.Is(err, storage.ErrExists) {
			replyError(w, "repository "+key+" already has a config", http.StatusConflict)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.mu.Lock()
		if s.repos[key] == nil {
			s.repos[key] = be
		}
		s.mu.Unlock()
		s.log.Info("created repository", "repo", key)
		w.WriteHeader(http.StatusOK)
	case http.MethodGet, http.MethodHead:
		_, err := s.repo(t.repo)
		if err != nil && !errors.Is(err, errNoRepo) {
			s.fail(w, r, err)
			return
		}
		info := rest.RepoInfo{
			Protocol: rest.ProtocolVersion,
			Exists:   err == nil,
			Features: rest.RepoFeatures{ConditionalCreate: true, AppendOnly: s.opts.AppendOnly},
		}
		b, _ := json.Marshal(info)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
		if r.Method == http.MethodGet {
			_, _ = w.Write(append(b, '\n'))
		}
	default:
		methodNotAllowed(w, "GET, HEAD, POST")
	}
}

// flushCounter counts what a bufio.Writer passes on.
type flushCounter struct {
	w io.Writer
	n int64
}

func (f *flushCounter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	f.n += int64(n)
	return n, err
}

// serveList streams the JSON listing of a type. A repository that does
// not exist lists nothing. When listing fails after part of the array
// was sent, the reply ends without the closing bracket, which the client
// reads as an error.
func (s *Server) serveList(w http.ResponseWriter, r *http.Request, t target) {
	be, err := s.repo(t.repo)
	w.Header().Set("Content-Type", "application/json")
	if errors.Is(err, errNoRepo) {
		_, _ = io.WriteString(w, "[]\n")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fc := &flushCounter{w: w}
	bw := bufio.NewWriterSize(fc, 32<<10)
	_ = bw.WriteByte('[')
	first := true
	err = be.List(r.Context(), t.h.Type, func(fi storage.FileInfo) error {
		b, err := json.Marshal(rest.ListEntry{Name: fi.Name, Size: fi.Size, MTime: fi.ModTime})
		if err != nil {
			return err
		}
		if !first {
			_ = bw.WriteByte(',')
		}
		first = false
		_, err = bw.Write(b)
		return err
	})
	if err != nil {
		if fc.n == 0 {
			w.Header().Del("Content-Type")
			s.fail(w, r, err)
			return
		}
		s.log.Warn("listing failed midway", "path", r.URL.Path, "error", err)
		_ = bw.Flush()
		return
	}
	_, _ = bw.WriteString("]\n")
	_ = bw.Flush()
}

// guardedWriter counts the bytes of a reply for its rate guard.
type guardedWriter struct {
	w io.Writer
	g *rateGuard
}

func (gw guardedWriter) Write(p []byte) (int, error) {
	n, err := gw.w.Write(p)
	gw.g.n.Add(int64(n))
	return n, err
}

// parseRange parses "bytes=FIRST-LAST" or "bytes=FIRST-" (a single
// range; suffix ranges are not part of the protocol). length 0 means to
// the end.
func parseRange(v string) (offset int64, length int, err error) {
	spec, ok := strings.CutPrefix(v, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, 0, fmt.Errorf("unsupported Range %q", v)
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok || first == "" {
		return 0, 0, fmt.Errorf("unsupported Range %q", v)
	}
	offset, err = strconv.ParseInt(first, 10, 64)
	if err != nil || offset < 0 {
		return 0, 0, fmt.Errorf("bad Range %q", v)
	}
	if last == "" {
		return offset, 0, nil
	}
	end, err := strconv.ParseInt(last, 10, 64)
	if err != nil || end < offset || end-offset >= 1<<40 {
		return 0, 0, fmt.Errorf("bad Range %q", v)
	}
	return offset, int(end - offset + 1), nil
}

func setInfoHeaders(h http.Header, fi storage.FileInfo) {
	h.Set(rest.HeaderModTime, fi.ModTime.UTC().Format(time.RFC3339Nano))
	h.Set("Last-Modified", fi.ModTime.UTC().Format(http.TimeFormat))
}

// serveLoad sends an object or a range of it (206).
func (s *Server) serveLoad(w http.ResponseWriter, r *http.Request, t target) {
	be, err := s.repo(t.repo)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var offset int64
	var length int
	rng := r.Header.Get("Range")
	if rng != "" {
		if offset, length, err = parseRange(rng); err != nil {
			replyError(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	fi, err := be.Stat(r.Context(), t.h)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rng != "" && (offset >= fi.Size || length > 0 && int64(length) > fi.Size-offset) {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(fi.Size, 10))
		replyError(w, fmt.Sprintf("range offset %d, length %d is past the end of the %d-byte object", offset, length, fi.Size), http.StatusRequestedRangeNotSatisfiable)
		return
	}
	started := false
	err = be.Load(r.Context(), t.h, length, offset, func(rd io.Reader) error {
		n := fi.Size - offset
		if length > 0 {
			n = int64(length)
		}
		if sr, ok := rd.(interface{ Size() int64 }); ok {
			n = sr.Size()
		}
		hd := w.Header()
		hd.Set("Content-Type", "application/octet-stream")
		hd.Set("Content-Length", strconv.FormatInt(n, 10))
		setInfoHeaders(hd, fi)
		started = true
		// A reader that stops reading would hold a slot for ever.
		rc := http.NewResponseController(w)
		g := s.guardRate(func() { _ = rc.SetWriteDeadline(past) })
		defer g.end()
		if rng != "" {
			hd.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", offset, offset+n-1, fi.Size))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		_, err := io.Copy(guardedWriter{w, g}, rd)
		return err
	})
	if err != nil && !started {
		s.fail(w, r, err)
	} else if err != nil {
		s.log.Debug("load cut short", "path", r.URL.Path, "error", err)
	}
}

// serveStat answers HEAD with the size and modification time.
func (s *Server) serveStat(w http.ResponseWriter, r *http.Request, t target) {
	be, err := s.repo(t.repo)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	fi, err := be.Stat(r.Context(), t.h)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("Content-Length", strconv.FormatInt(fi.Size, 10))
	setInfoHeaders(hd, fi)
	w.WriteHeader(http.StatusOK)
}

// serveSave stores the body. "If-None-Match: *" makes it a conditional
// create (412 if the object exists). In append-only mode the name must
// fit the object type (appendOnlyName, appendOnlyContent), and an
// existing object may only be "overwritten" with identical bytes (which
// changes nothing and lets a client retry a save whose reply it lost),
// except sessions/ objects, which writers refresh.
func (s *Server) serveSave(w http.ResponseWriter, r *http.Request, t target, user string) {
	ifNoneMatch := false
	switch v := r.Header.Get("If-None-Match"); v {
	case "":
	case "*":
		ifNoneMatch = true
	default:
		replyError(w, "only If-None-Match: * is supported", http.StatusBadRequest)
		return
	}
	size := r.ContentLength
	if size < 0 {
		replyError(w, "Content-Length required", http.StatusLengthRequired)
		return
	}
	if size > s.opts.MaxRequestSize {
		replyError(w, fmt.Sprintf("request body of %d bytes exceeds the limit of %d", size, s.opts.MaxRequestSize), http.StatusRequestEntityTooLarge)
		return
	}
	if s.opts.AppendOnly {
		if code, msg := appendOnlyName(t.h); code != 0 {
			replyError(w, msg, code)
			return
		}
	}
	be, err := s.repo(t.repo)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data, release, err := s.readBody(w, r, user, size)
	defer release()
	switch {
	case errors.Is(err, errNoMemory):
		w.Header().Set("Retry-After", "1")
		replyError(w, "upload memory exhausted, try again", http.StatusServiceUnavailable)
		return
	case errors.Is(err, errTooSlow):
		s.log.Info("upload cut off", "path", r.URL.Path, "user", user, "error", err)
		replyError(w, err.Error(), http.StatusRequestTimeout)
		return
	case err != nil:
		replyError(w, fmt.Sprintf("read request body: %v", err), http.StatusBadRequest)
		return
	}
	// Sessions are in-progress markers that a writer refreshes (overwrites)
	// while it runs and removes when it ends; they hold no data, so
	// append-only mode leaves them alone.
	if !s.opts.AppendOnly || t.h.Type == storage.SessionFile {
		if err := be.Save(r.Context(), t.h, data, storage.SaveOptions{IfNotExists: ifNoneMatch}); err != nil {
			s.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	if code, msg := appendOnlyContent(t.h, data); code != 0 {
		replyError(w, msg, code)
		return
	}
	// Append-only: every save is a conditional create, so that nothing
	// is replaced between a check and the save.
	err = be.Save(r.Context(), t.h, data, storage.SaveOptions{IfNotExists: true})
	if errors.Is(err, storage.ErrExists) && !ifNoneMatch {
		old, lerr := storage.LoadAll(r.Context(), be, t.h)
		switch {
		case lerr != nil:
			err = lerr
		case bytes.Equal(old, data):
			err = nil
		default:
			replyError(w, "append-only: "+t.h.String()+" exists with other content and may not be overwritten", http.StatusForbidden)
			return
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// serveRemove deletes an object; a missing one is fine. In append-only
// mode only sessions/ objects may be deleted.
func (s *Server) serveRemove(w http.ResponseWriter, r *http.Request, t target) {
	if s.opts.AppendOnly {
		if code, msg := appendOnlyRemove(t.h); code != 0 {
			replyError(w, msg, code)
			return
		}
	}
	be, err := s.repo(t.repo)
	if errors.Is(err, errNoRepo) {
		w.WriteHeader(http.StatusOK)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := be.Remove(r.Context(), t.h); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// fail replies with the status an error maps to. Unexpected errors are
// logged and answered with a bare 500: their text may hold server paths.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errNoRepo):
		replyError(w, errNoRepo.Error(), http.StatusNotFound)
	case errors.Is(err, storage.ErrNotExist):
		replyError(w, storage.ErrNotExist.Error(), http.StatusNotFound)
	case errors.Is(err, storage.ErrExists):
		replyError(w, storage.ErrExists.Error(), http.StatusPreconditionFailed)
	case errors.Is(err, storage.ErrNoSpace):
		s.log.Warn("store is full", "path", r.URL.Path, "error", err)
		replyError(w, storage.ErrNoSpace.Error(), http.StatusInsufficientStorage)
	case errors.Is(err, storage.ErrPermission):
		s.log.Warn("store refused", "path", r.URL.Path, "error", err)
		replyError(w, storage.ErrPermission.Error(), http.StatusForbidden)
	case r.Context().Err() != nil:
		replyError(w, "request canceled", http.StatusServiceUnavailable)
	default:
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		replyError(w, "internal server error", http.StatusInternalServerError)
	}
}
