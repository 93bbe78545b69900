package sftp

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bunkerbackup/bunker/internal/storage"
)

const (
	// tempPrefix starts the name of every temporary file a Save writes.
	// No valid object name starts with a dot, so List never mistakes one
	// for an object.
	tempPrefix = ".tmp-"
	configName = "config"
	// readBuffer bounds the buffer Load reads through: large reads are
	// split by the SFTP client into up to 64 concurrent requests.
	readBuffer = 1 << 20
)

// Backend stores a repository in a directory of an SFTP server. It keeps up
// to Config.Connections SSH connections, made on demand; a connection that
// breaks fails the requests in flight on it (with errors the retry layer
// retries) and is replaced by the next request. All methods are safe for
// concurrent use.
type Backend struct {
	cfg      Config
	loc      string
	signers  []ssh.Signer // from the key files
	keyNotes []string     // what loadKeys used or skipped

	slots  []*slot
	next   atomic.Uint32
	closed atomic.Bool
	wg     sync.WaitGroup // watcher and keepalive goroutines
}

var _ storage.Backend = (*Backend)(nil)

// slot holds one connection, or none until a request needs it.
type slot struct {
	mu  sync.Mutex
	cur *session
}

// Open opens the repository cfg names. It connects (checking the host key
// and logging in) and fails if that fails; a missing repository directory
// is not an error here.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := b.session(ctx); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("open repository %s: %w", b.loc, err)
	}
	return b, nil
}

// Create connects like Open and creates the repository directory (and its
// parents) with the subdirectory of every object type. An existing
// directory is fine unless it already holds a config, which fails with an
// error wrapping storage.ErrExists.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b, err := newBackend(cfg)
	if err != nil {
		return nil, err
	}
	if err := b.create(ctx); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("create repository %s: %w", b.loc, err)
	}
	return b, nil
}

func (b *Backend) create(ctx context.Context) error {
	s, err := b.session(ctx)
	if err != nil {
		return err
	}
	cfgPath := b.path(storage.Handle{Type: storage.ConfigFile})
	_, err = s.sftp.Lstat(cfgPath)
	switch {
	case err == nil:
		return fmt.Errorf("config: %w", storage.ErrExists)
	case !errors.Is(err, os.ErrNotExist):
		return b.checkErr(s, fmt.Errorf("stat %s: %w", cfgPath, mapErr(err)))
	}
	for _, t := range storage.AllTypes {
		if err := ctx.Err(); err != nil {
			return err
		}
		dir := b.cfg.Path
		if t != storage.ConfigFile {
			dir = path.Join(b.cfg.Path, string(t))
		}
		if err := s.sftp.MkdirAll(dir); err != nil {
			return b.checkErr(s, fmt.Errorf("mkdir %s: %w", dir, mapErr(err)))
		}
	}
	return nil
}

func newBackend(cfg Config) (*Backend, error) {
	if cfg.Connections == 0 {
		cfg.Connections = DefaultConnections
	}
	if err := cfg.Validate(); err != nil {
		return nil, storage.Permanent(err)
	}
	b := &Backend{cfg: cfg, loc: cfg.Location()}
	var err error
	b.signers, b.keyNotes, err = loadKeys(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.loc, err)
	}
	b.slots = make([]*slot, cfg.Connections)
	for i := range b.slots {
		b.slots[i] = &slot{}
	}
	return b, nil
}

// session returns a live connection, connecting if the slot it picks has
// none.
func (b *Backend) session(ctx context.Context) (*session, error) {
	sl := b.slots[int(b.next.Add(1)%uint32(len(b.slots)))]
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if b.closed.Load() {
		return nil, storage.Permanent(errors.New("backend is closed"))
	}
	if s := sl.cur; s != nil {
		select {
		case <-s.done:
		default:
			return s, nil
		}
	}
	s, err := b.dial(ctx)
	if err != nil {
		return nil, err
	}
	sl.cur = s
	b.wg.Add(2)
	go func() {
		defer b.wg.Done()
		// Wait returns when the SFTP session ends: the connection
		// broke or was closed. The next request then reconnects.
		_ = s.sftp.Wait()
		sl.mu.Lock()
		if sl.cur == s {
			sl.cur = nil
		}
		sl.mu.Unlock()
		s.close()
	}()
	go func() {
		defer b.wg.Done()
		s.keepalive()
	}()
	return s, nil
}

// checkErr closes the session when err says it is gone, so that the next
// request reconnects, and returns err.
func (b *Backend) checkErr(s *session, err error) error {
	if isConnLost(err) {
		s.close()
		return fmt.Errorf("%w: the SSH connection to %s broke (the next request reconnects)", err, b.cfg.addr())
	}
	return err
}

// Location returns the location as the user typed it, "sftp:…".
func (b *Backend) Location() string { return b.loc }

// Features reports atomic conditional create: a plain SFTP rename, which
// OpenSSH implements with link(2), refuses to replace an existing file.
func (b *Backend) Features() storage.Features {
	return storage.Features{ConditionalCreate: true}
}

// Close closes the SSH connections. Requests in flight fail.
func (b *Backend) Close() error {
	b.closed.Store(true)
	for _, sl := range b.slots {
		sl.mu.Lock()
		s := sl.cur
		sl.cur = nil
		sl.mu.Unlock()
		if s != nil {
			s.close()
		}
	}
	b.wg.Wait()
	return nil
}

// dirOf is the directory holding the object of a valid handle.
func (b *Backend) dirOf(h storage.Handle) string {
	switch h.Type {
	case storage.ConfigFile:
		return b.cfg.Path
	case storage.PackFile:
		return path.Join(b.cfg.Path, string(storage.PackFile), storage.PackShard(h.Name))
	default:
		return path.Join(b.cfg.Path, string(h.Type))
	}
}

// path is the file of the object of a valid handle.
func (b *Backend) path(h storage.Handle) string {
	if h.Type == storage.ConfigFile {
		return path.Join(b.cfg.Path, configName)
	}
	return path.Join(b.dirOf(h), h.Name)
}

// fail formats the error of an operation on h.
func (b *Backend) fail(op string, h storage.Handle, err error) error {
	return fmt.Errorf("%s: %s %v: %w", b.loc, op, h, err)
}

// prepare checks the handle and the context and returns a session.
func (b *Backend) prepare(ctx context.Context, op string, h storage.Handle) (*session, error) {
	if err := h.Valid(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", b.loc, op, storage.Permanent(err))
	}
	if err := ctx.Err(); err != nil {
		return nil, b.fail(op, h, err)
	}
	s, err := b.session(ctx)
	if err != nil {
		return nil, b.fail(op, h, err)
	}
	return s, nil
}

// Save writes data to a temporary file next to the object, syncs it
// (fsync@openssh.com), and renames it into place, then syncs the
// directory. An existing object is replaced (posix-rename@openssh.com),
// unless opts.IfNotExists, where a plain SFTP rename fails if the object
// exists and Save returns an error wrapping storage.ErrExists. The
// temporary file is removed on failure when the connection still works.
// opts.RetainUntil is ignored.
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	s, err := b.prepare(ctx, "save", h)
	if err != nil {
		return err
	}
	if err := b.save(ctx, s, h, data, opts); err != nil {
		return b.fail("save", h, b.checkErr(s, err))
	}
	return nil
}

func (b *Backend) save(ctx context.Context, s *session, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	dir, final := b.dirOf(h), b.path(h)
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	tmp := path.Join(dir, tempPrefix+hex.EncodeToString(rnd[:]))
	if err := b.writeTemp(s, dir, tmp, data); err != nil {
		_ = s.sftp.Remove(tmp)
		return err
	}
	if err := ctx.Err(); err != nil {
		_ = s.sftp.Remove(tmp)
		return err
	}
	if opts.IfNotExists {
		if err := s.sftp.Rename(tmp, final); err != nil {
			_ = s.sftp.Remove(tmp)
			// OpenSSH reports EEXIST as a generic failure: look.
			if _, serr := s.sftp.Lstat(final); serr == nil {
				return storage.ErrExists
			}
			return fmt.Errorf("rename %s to %s: %w", tmp, final, mapErr(err))
		}
	} else if err := b.replace(s, tmp, final); err != nil {
		_ = s.sftp.Remove(tmp)
		return fmt.Errorf("rename %s to %s: %w", tmp, final, mapErr(err))
	}
	if err := b.syncDir(s, dir); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, mapErr(err))
	}
	return nil
}

// replace renames tmp to final, replacing final.
func (b *Backend) replace(s *session, tmp, final string) error {
	if s.posixRename {
		return s.sftp.PosixRename(tmp, final)
	}
	// Without the extension, a plain rename refuses to replace: remove
	// the old object first. Not atomic, but the engine only replaces an
	// object with identical content.
	err := s.sftp.Rename(tmp, final)
	if err != nil {
		if _, serr := s.sftp.Lstat(final); serr == nil {
			if rerr := s.sftp.Remove(final); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				return rerr
			}
			err = s.sftp.Rename(tmp, final)
		}
	}
	return err
}

// writeTemp creates tmp in dir (creating dir if needed) and writes and
// syncs data to it.
func (b *Backend) writeTemp(s *session, dir, tmp string, data []byte) error {
	const flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err := s.sftp.OpenFile(tmp, flags)
	if errors.Is(err, os.ErrNotExist) {
		if err := s.sftp.MkdirAll(dir); err != nil {
			return fmt.Errorf("mkdir %s: %w", dir, mapErr(err))
		}
		f, err = s.sftp.OpenFile(tmp, flags)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, mapErr(err))
	}
	if len(data) > 0 {
		_, err = f.Write(data)
	}
	if err == nil && s.fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, b.spaceErr(s, dir, len(data), err))
	}
	return nil
}

// spaceErr maps a write error, and tells a full disk from other generic
// failures by asking the server for the free space (statvfs@openssh.com):
// OpenSSH reports ENOSPC and EDQUOT as SSH_FX_FAILURE.
func (b *Backend) spaceErr(s *session, dir string, need int, err error) error {
	if !isFailure(err) || !s.statvfs {
		return mapErr(err)
	}
	st, serr := s.sftp.StatVFS(dir)
	if serr != nil || st.Frsize == 0 {
		return mapErr(err)
	}
	if free := st.Bavail * st.Frsize; free < uint64(need)+st.Frsize || st.Favail == 0 {
		return fmt.Errorf("%w (%d bytes free): %w", storage.ErrNoSpace, free, err)
	}
	return mapErr(err)
}

// syncDir makes a rename in dir durable by fsyncing the directory, which
// OpenSSH allows on a directory opened like a file. Servers that refuse to
// open a directory are not asked.
func (b *Backend) syncDir(s *session, dir string) error {
	if !s.fsync {
		return nil
	}
	d, err := s.sftp.OpenFile(dir, os.O_RDONLY)
	if err != nil {
		if isConnLost(err) {
			return err
		}
		return nil
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Load calls fn with a reader of length bytes of the object from offset
// (length 0: to the end). A range past the end of the object is an error.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := h.Valid(); err != nil {
		return fmt.Errorf("%s: load: %w", b.loc, storage.Permanent(err))
	}
	if length < 0 || offset < 0 {
		return b.fail("load", h, storage.Permanent(fmt.Errorf("invalid range: offset %d, length %d", offset, length)))
	}
	s, err := b.prepare(ctx, "load", h)
	if err != nil {
		return err
	}
	if err := b.load(ctx, s, h, length, offset, fn); err != nil {
		return b.fail("load", h, b.checkErr(s, err))
	}
	return nil
}

func (b *Backend) load(ctx context.Context, s *session, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	p := b.path(h)
	f, err := s.sftp.Open(p)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, mapErr(err))
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", p, mapErr(err))
	}
	if !fi.Mode().IsRegular() {
		return storage.Permanent(fmt.Errorf("%s is not a regular file", p))
	}
	n, err := storage.RangeLength(fi.Size(), length, offset)
	if err != nil {
		return err
	}
	rd := &ctxReader{ctx: ctx, r: io.NewSectionReader(f, offset, n)}
	return fn(bufio.NewReaderSize(rd, int(min(max(n, 16), readBuffer))))
}

// ctxReader stops reading when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = mapErr(err)
	}
	return n, err
}

// Stat returns the size and modification time of an object.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	s, err := b.prepare(ctx, "stat", h)
	if err != nil {
		return storage.FileInfo{}, err
	}
	p := b.path(h)
	fi, err := s.sftp.Stat(p)
	if err != nil {
		return storage.FileInfo{}, b.fail("stat", h, b.checkErr(s, fmt.Errorf("stat %s: %w", p, mapErr(err))))
	}
	if !fi.Mode().IsRegular() {
		return storage.FileInfo{}, b.fail("stat", h, storage.Permanent(fmt.Errorf("%s is not a regular file", p)))
	}
	return storage.FileInfo{Name: h.Name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Remove deletes an object; a missing object is not an error.
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	s, err := b.prepare(ctx, "remove", h)
	if err != nil {
		return err
	}
	p := b.path(h)
	err = s.sftp.Remove(p)
	if err == nil || errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return b.fail("remove", h, b.checkErr(s, fmt.Errorf("remove %s: %w", p, mapErr(err))))
}

// List calls fn for every object of type t. Temporary files, files whose
// names are not valid object names, and packs in the wrong shard directory
// (which Load could not find) are skipped. An error from fn stops the
// listing and is returned as it is.
func (b *Backend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: list %s: %w", b.loc, t, err)
	}
	switch t {
	case storage.ConfigFile, storage.KeyFile, storage.PackFile, storage.IndexFile, storage.SnapshotFile, storage.SessionFile, storage.MaintFile:
	default:
		return fmt.Errorf("%s: list %q: %w", b.loc, t, storage.Permanent(errors.New("unknown file type")))
	}
	s, err := b.session(ctx)
	if err != nil {
		return fmt.Errorf("%s: list %s: %w", b.loc, t, err)
	}
	var stop errStop
	err = b.list(ctx, s, t, fn)
	if errors.As(err, &stop) {
		return stop.err
	}
	if err != nil {
		return fmt.Errorf("%s: list %s: %w", b.loc, t, b.checkErr(s, err))
	}
	return nil
}

// errStop carries an error of List's callback through list.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }

func (b *Backend) list(ctx context.Context, s *session, t storage.FileType, fn func(storage.FileInfo) error) error {
	switch t {
	case storage.ConfigFile:
		p := b.path(storage.Handle{Type: t})
		fi, err := s.sftp.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stat %s: %w", p, mapErr(err))
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		if err := fn(storage.FileInfo{Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return errStop{err}
		}
		return nil
	case storage.PackFile:
		root := path.Join(b.cfg.Path, string(t))
		entries, err := readDir(ctx, s, root)
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Name()
			if !e.IsDir() || strings.HasPrefix(name, ".") {
				continue
			}
			err := b.listDir(ctx, s, t, path.Join(root, name), func(n string) bool { return storage.PackShard(n) == name }, fn)
			if err != nil {
				return err
			}
		}
		return nil
	default:
		return b.listDir(ctx, s, t, path.Join(b.cfg.Path, string(t)), nil, fn)
	}
}

// readDir lists dir; a missing dir is empty.
func readDir(ctx context.Context, s *session, dir string) ([]os.FileInfo, error) {
	entries, err := s.sftp.ReadDirContext(ctx, dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("read directory %s: %w", dir, mapErr(err))
	}
	return entries, nil
}

// listDir calls fn for the regular files in dir with valid names of type t
// that keep (if not nil) accepts.
func (b *Backend) listDir(ctx context.Context, s *session, t storage.FileType, dir string, keep func(string) bool, fn func(storage.FileInfo) error) error {
	entries, err := readDir(ctx, s, dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !e.Mode().IsRegular() ||
			(storage.Handle{Type: t, Name: name}).Valid() != nil || keep != nil && !keep(name) {
			continue
		}
		if err := fn(storage.FileInfo{Name: name, Size: e.Size(), ModTime: e.ModTime()}); err != nil {
			return errStop{err}
		}
	}
	return nil
}

// RemoveStaleTemp removes the temporary files that Saves cut off by a lost
// connection (or a killed process) left behind, if they are older than
// olderThan by the server's clock, and returns how many it removed.
func (b *Backend) RemoveStaleTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	s, err := b.session(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: remove stale temporary files: %w", b.loc, err)
	}
	dirs := []string{b.cfg.Path}
	for _, t := range storage.AllTypes {
		if t != storage.ConfigFile {
			dirs = append(dirs, path.Join(b.cfg.Path, string(t)))
		}
	}
	packs := path.Join(b.cfg.Path, string(storage.PackFile))
	entries, err := readDir(ctx, s, packs)
	if err != nil {
		return 0, fmt.Errorf("%s: remove stale temporary files: %w", b.loc, b.checkErr(s, err))
	}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			dirs = append(dirs, path.Join(packs, e.Name()))
		}
	}
	cutoff := time.Now().Add(-olderThan)
	n := 0
	for _, dir := range dirs {
		entries, err := readDir(ctx, s, dir)
		if err != nil {
			return n, fmt.Errorf("%s: remove stale temporary files: %w", b.loc, b.checkErr(s, err))
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), tempPrefix) || !e.Mode().IsRegular() || e.ModTime().After(cutoff) {
				continue
			}
			err := s.sftp.Remove(path.Join(dir, e.Name()))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return n, fmt.Errorf("%s: remove %s: %w", b.loc, path.Join(dir, e.Name()), b.checkErr(s, mapErr(err)))
			}
			if err == nil {
				n++
			}
		}
	}
	return n, nil
}
