//go:build linux

package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/bunkerbackup/bunker/internal/source"
)

// Save walks dir and writes it into sink under prefix (a slash-separated
// path such as "volumes/<ns>/<pvc>"; "" is the root): regular files,
// streamed, directories and symbolic links, each with its mode, mtime and
// numeric owner. Sockets, devices and named pipes are skipped with a
// warning. It never follows a symbolic link and does not descend into
// other filesystems mounted below dir (a warning names each).
//
// A file or directory that vanishes during the walk, or changes while it
// is read, is a warning; one that cannot be opened or read fails Save,
// and then nothing it wrote may be committed. Up to o.Jobs files are read
// at once.
//
// Limitation of source.Meta: a regular file with mode 0000 is stored
// with the sink's default mode (0600).
func Save(ctx context.Context, sink source.Sink, prefix, dir string, o FileOptions) (Stats, error) {
	if err := errors.Join(o.Validate(), checkPrefix(prefix)); err != nil {
		return Stats{}, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stats{}, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return Stats{}, &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	s := &saver{sink: sink, o: o, dev: st.Dev}
	g, gctx := errgroup.WithContext(ctx)
	// The walker takes one slot, the files it hands out the others.
	g.SetLimit(o.jobs() + 1)
	root := newDirRef(fd, closeFD)
	g.Go(func() error {
		defer root.release()
		return s.walk(gctx, g, root, prefix, dir, &st)
	})
	err = g.Wait()
	return s.counts.stats(), err
}

// counts are Stats updated from several goroutines.
type counts struct {
	files, dirs, links, bytes, skipped atomic.Int64
}

func (c *counts) stats() Stats {
	return Stats{Files: c.files.Load(), Dirs: c.dirs.Load(), Symlinks: c.links.Load(), Bytes: c.bytes.Load(), Skipped: c.skipped.Load()}
}

type saver struct {
	sink   source.Sink
	o      FileOptions
	dev    uint64 // the filesystem of dir
	counts counts
}

// dirRef is an open directory shared by the walker and the file jobs in
// it; the last release calls last.
type dirRef struct {
	fd   int
	refs atomic.Int64
	last func(*dirRef)
}

func newDirRef(fd int, last func(*dirRef)) *dirRef {
	d := &dirRef{fd: fd, last: last}
	d.refs.Store(1)
	return d
}

func (d *dirRef) acquire() { d.refs.Add(1) }

func (d *dirRef) release() {
	if d.refs.Add(-1) == 0 {
		d.last(d)
	}
}

func closeFD(d *dirRef) { unix.Close(d.fd) }

// walk saves the directory d (already open, with stat st) and everything
// below it; files go to jobs of g.
func (s *saver) walk(ctx context.Context, g *errgroup.Group, d *dirRef, rel, local string, st *unix.Stat_t) error {
	if rel != "" {
		if err := s.sink.Mkdir(rel, meta(st)); err != nil {
			return fmt.Errorf("save %s: %w", local, err)
		}
	}
	s.counts.dirs.Add(1)
	names, err := readNames(d.fd)
	if err != nil {
		return &fs.PathError{Op: "read directory", Path: local, Err: err}
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		cl, cr := filepath.Join(local, name), joinRel(rel, name)
		var cst unix.Stat_t
		if err := unix.Fstatat(d.fd, name, &cst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if vanished(err) {
				s.skip("%s: vanished during the backup", cl)
				continue
			}
			return &fs.PathError{Op: "lstat", Path: cl, Err: err}
		}
		switch cst.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			d.acquire()
			g.Go(func() error {
				defer d.release()
				return s.file(ctx, d.fd, name, cr, cl)
			})
		case unix.S_IFDIR:
			if cst.Dev != s.dev {
				s.skip("%s: another filesystem is mounted there, skipped", cl)
				continue
			}
			cfd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				if vanished(err) || errors.Is(err, unix.ELOOP) {
					s.skip("%s: vanished or replaced during the backup", cl)
					continue
				}
				return &fs.PathError{Op: "open", Path: cl, Err: err}
			}
			if err := unix.Fstat(cfd, &cst); err != nil {
				unix.Close(cfd)
				return &fs.PathError{Op: "stat", Path: cl, Err: err}
			}
			if cst.Dev != s.dev {
				unix.Close(cfd)
				s.skip("%s: another filesystem is mounted there, skipped", cl)
				continue
			}
			child := newDirRef(cfd, closeFD)
			err = s.walk(ctx, g, child, cr, cl, &cst)
			child.release()
			if err != nil {
				return err
			}
		case unix.S_IFLNK:
			target, err := readlinkat(d.fd, name, cst.Size)
			if err != nil {
				if vanished(err) || errors.Is(err, unix.EINVAL) {
					s.skip("%s: vanished or replaced during the backup", cl)
					continue
				}
				return &fs.PathError{Op: "readlink", Path: cl, Err: err}
			}
			if err := s.sink.Symlink(cr, target, meta(&cst)); err != nil {
				return fmt.Errorf("save %s: %w", cl, err)
			}
			s.counts.links.Add(1)
		default:
			s.skip("%s: %s skipped", cl, typeName(cst.Mode))
		}
	}
	return nil
}

func (s *saver) skip(format string, args ...any) {
	s.counts.skipped.Add(1)
	s.o.warn(format, args...)
}

// file saves the regular file name in the directory dirfd.
func (s *saver) file(ctx context.Context, dirfd int, name, rel, local string) error {
	// O_NONBLOCK: should it have become a named pipe, open must not
	// wait for a writer. O_NOATIME where we may (we own it, or root).
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Openat(dirfd, name, flags, 0)
	}
	if err != nil {
		if vanished(err) || errors.Is(err, unix.ELOOP) {
			s.skip("%s: vanished or replaced during the backup", local)
			return nil
		}
		return &fs.PathError{Op: "open", Path: local, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return &fs.PathError{Op: "stat", Path: local, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		s.skip("%s: replaced by a %s during the backup, skipped", local, typeName(st.Mode))
		return nil
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return &fs.PathError{Op: "fcntl", Path: local, Err: err}
	}
	f := os.NewFile(uintptr(fd), local)
	defer f.Close()
	n, err := s.sink.WriteFile(ctx, rel, f, meta(&st))
	if err != nil {
		return fmt.Errorf("save %s: %w", local, err)
	}
	var after unix.Stat_t
	if unix.Fstat(fd, &after) == nil && (after.Size != st.Size || after.Mtim != st.Mtim || n != st.Size) {
		s.o.warn("%s: changed while it was read", local)
	}
	s.counts.files.Add(1)
	s.counts.bytes.Add(n)
	return nil
}

// meta is the metadata of an entry with stat st; directories and links
// carry their type so that a zero permission is kept.
func meta(st *unix.Stat_t) *source.Meta {
	m := fs.FileMode(st.Mode & 0o777)
	if st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	}
	return &source.Meta{Mode: m, ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec), UID: st.Uid, GID: st.Gid}
}

// unixMode is the permission and special bits of m for chmod.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symbolic link"
	case unix.S_IFIFO:
		return "named pipe"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	}
	return fmt.Sprintf("file of type %#o", mode&unix.S_IFMT)
}

// vanished reports whether err means the entry is no longer there.
func vanished(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)
}

func joinRel(rel, name string) string {
	if rel == "" {
		return name
	}
	return rel + "/" + name
}

// readNames returns the names in the open directory fd, sorted.
func readNames(fd int) ([]string, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// readlinkat reads the target of the link name in dirfd; size is its
// length from stat (a hint).
func readlinkat(dirfd int, name string, size int64) (string, error) {
	n := max(int(size)+1, 256)
	for {
		buf := make([]byte, n)
		l, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if l < n {
			return string(buf[:l]), nil
		}
		if n >= 1<<20 {
			return "", unix.ENAMETOOLONG
		}
		n *= 2
	}
}

// Load writes the files under prefix in tree back into dir, which is
// created if missing: files, directories and symbolic links with their
// mode and mtime, and their owner when running as root. Existing files
// are replaced, files the backup does not have are left alone.
//
// Nothing is written outside dir or through a symbolic link found there:
// every step is relative to a directory opened with O_NOFOLLOW (a link or
// file where the backup has a directory is replaced by the directory),
// and each file or link is created under a temporary name in its
// directory, synced and renamed over the old entry. Links are recreated
// exactly as they were, wherever they point. Directory metadata is set
// once everything inside is written. Up to o.Jobs files are written at
// once.
func Load(ctx context.Context, tree source.Tree, prefix, dir string, o FileOptions) (Stats, error) {
	if err := errors.Join(o.Validate(), checkPrefix(prefix)); err != nil {
		return Stats{}, err
	}
	e, err := tree.Stat(ctx, prefix)
	if err != nil {
		return Stats{}, fmt.Errorf("volume %q in the backup: %w", prefix, err)
	}
	if e.Type != source.TypeDir {
		return Stats{}, fmt.Errorf("volume %q is a %s in the backup, not a directory", prefix, e.Type)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Stats{}, err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stats{}, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	l := &loader{tree: tree, o: o, asRoot: os.Geteuid() == 0}
	root := l.newDir(fd, nil, "", dir, e)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.jobs() + 1)
	g.Go(func() error {
		err := l.walk(gctx, g, root, prefix, dir)
		root.release()
		return err
	})
	err = g.Wait()
	if err == nil {
		err = l.finalErr()
	}
	return l.counts.stats(), err
}

type loader struct {
	tree   source.Tree
	o      FileOptions
	asRoot bool
	counts counts

	failed atomic.Bool // stop setting directory metadata
	mu     sync.Mutex
	err    error // of setting directory metadata
}

// loadDir is a restored directory: its metadata is set when its last
// reference (the walker, a file job, a subdirectory) is released.
type loadDir struct {
	*dirRef
	parent *loadDir
	name   string // in parent
	local  string
	entry  source.Entry
}

func (l *loader) newDir(fd int, parent *loadDir, name, local string, e source.Entry) *loadDir {
	l.counts.dirs.Add(1)
	d := &loadDir{parent: parent, name: name, local: local, entry: e}
	d.dirRef = newDirRef(fd, func(*dirRef) { l.finish(d) })
	return d
}

func (l *loader) finalErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// finish sets the metadata of d, syncs and closes it, and releases its
// parent.
func (l *loader) finish(d *loadDir) {
	if !l.failed.Load() {
		if err := l.dirMeta(d); err != nil {
			l.failed.Store(true)
			l.mu.Lock()
			if l.err == nil {
				l.err = err
			}
			l.mu.Unlock()
		}
	}
	unix.Close(d.fd)
	if d.parent != nil {
		d.parent.release()
	}
}

func (l *loader) dirMeta(d *loadDir) error {
	if err := l.ownerMode(d.fd, d.entry); err != nil {
		return &fs.PathError{Op: "set owner and mode of", Path: d.local, Err: err}
	}
	if !d.entry.ModTime.IsZero() {
		var err error
		if d.parent != nil {
			err = setTimes(d.parent.fd, d.name, d.entry.ModTime)
		} else {
			// The target directory the caller named, links and all.
			ts := unix.NsecToTimespec(d.entry.ModTime.UnixNano())
			err = unix.UtimesNanoAt(unix.AT_FDCWD, d.local, []unix.Timespec{ts, ts}, 0)
		}
		if err != nil {
			return &fs.PathError{Op: "set mtime of", Path: d.local, Err: err}
		}
	}
	if err := unix.Fsync(d.fd); err != nil {
		return &fs.PathError{Op: "sync", Path: d.local, Err: err}
	}
	return nil
}

// ownerMode sets the owner (as root) and then the mode of the open file
// fd: chown clears set-user-ID bits, so it comes first.
func (l *loader) ownerMode(fd int, e source.Entry) error {
	if l.asRoot {
		if err := unix.Fchown(fd, int(e.UID), int(e.GID)); err != nil {
			return err
		}
	}
	return unix.Fchmod(fd, unixMode(e.Mode))
}

// setTimes sets the access and modification time of name in dirfd to t,
// of a link itself rather than its target.
func setTimes(dirfd int, name string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(dirfd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// walk restores the entries of the directory tp of the backup into d.
func (l *loader) walk(ctx context.Context, g *errgroup.Group, d *loadDir, tp, local string) (err error) {
	defer func() {
		if err != nil {
			l.failed.Store(true)
		}
	}()
	ents, err := l.tree.List(ctx, tp)
	if err != nil {
		return fmt.Errorf("list %q in the backup: %w", tp, err)
	}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := checkName(e.Name); err != nil {
			return fmt.Errorf("directory %q: %w", tp, err)
		}
		cp, cl := joinRel(tp, e.Name), filepath.Join(local, e.Name)
		switch e.Type {
		case source.TypeDir:
			fd, err := l.ensureDir(d.fd, e.Name, cl)
			if err != nil {
				return err
			}
			d.acquire()
			child := l.newDir(fd, d, e.Name, cl, e)
			err = l.walk(ctx, g, child, cp, cl)
			child.release()
			if err != nil {
				return err
			}
		case source.TypeFile:
			d.acquire()
			g.Go(func() error {
				err := l.file(ctx, d.fd, e, cp, cl)
				if err != nil {
					l.failed.Store(true)
				}
				d.release()
				return err
			})
		case source.TypeSymlink:
			if err := l.symlink(d.fd, e, cl); err != nil {
				return err
			}
		default:
			l.counts.skipped.Add(1)
			l.o.warn("%s: a %s in the backup cannot be restored, skipped", cl, e.Type)
		}
	}
	return nil
}

// ensureDir opens the directory name in dirfd, creating it if missing
// and replacing whatever else is there (never following a link).
func (l *loader) ensureDir(dirfd int, name, local string) (int, error) {
	for range 5 {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.ENOENT):
			if err := unix.Mkdirat(dirfd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
				return -1, &fs.PathError{Op: "mkdir", Path: local, Err: err}
			}
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
			var st unix.Stat_t
			what := "file"
			if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				what = typeName(st.Mode)
			}
			if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				return -1, &fs.PathError{Op: "remove", Path: local, Err: err}
			}
			l.o.warn("%s: replaced a %s by the directory from the backup", local, what)
		default:
			return -1, &fs.PathError{Op: "open", Path: local, Err: err}
		}
	}
	return -1, fmt.Errorf("%s: cannot create the directory: it keeps changing", local)
}

// file restores the file e (at tp in the backup) as e.Name in dirfd.
func (l *loader) file(ctx context.Context, dirfd int, e source.Entry, tp, local string) error {
	rc, err := l.tree.Open(ctx, tp)
	if err != nil {
		return fmt.Errorf("read %q from the backup: %w", tp, err)
	}
	defer rc.Close()
	tmp, fd, err := createTemp(dirfd)
	if err != nil {
		return &fs.PathError{Op: "create a temporary file for", Path: local, Err: err}
	}
	f := os.NewFile(uintptr(fd), local)
	done := false
	defer func() {
		if !done {
			f.Close()
			unix.Unlinkat(dirfd, tmp, 0)
		}
	}()
	n, err := io.Copy(f, rc)
	if err != nil {
		return fmt.Errorf("restore %s: %w", local, err)
	}
	if n != e.Size {
		return fmt.Errorf("restore %s: %d bytes read from the backup, the file has %d", local, n, e.Size)
	}
	if err := l.ownerMode(fd, e); err != nil {
		return &fs.PathError{Op: "set owner and mode of", Path: local, Err: err}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := setTimes(dirfd, tmp, e.ModTime); err != nil {
		return &fs.PathError{Op: "set mtime of", Path: local, Err: err}
	}
	if err := l.replace(dirfd, tmp, e.Name, local, "file"); err != nil {
		return err
	}
	done = true
	l.counts.files.Add(1)
	l.counts.bytes.Add(n)
	return nil
}

// symlink restores the link e as e.Name in dirfd.
func (l *loader) symlink(dirfd int, e source.Entry, local string) error {
	tmp, err := "", error(unix.EEXIST)
	for i := 0; i < 100 && errors.Is(err, unix.EEXIST); i++ {
		tmp = tempName()
		err = unix.Symlinkat(e.Target, dirfd, tmp)
	}
	if err != nil {
		return &fs.PathError{Op: "symlink", Path: local, Err: err}
	}
	err = func() error {
		if l.asRoot {
			if err := unix.Fchownat(dirfd, tmp, int(e.UID), int(e.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return &fs.PathError{Op: "set owner of", Path: local, Err: err}
			}
		}
		if !e.ModTime.IsZero() {
			if err := setTimes(dirfd, tmp, e.ModTime); err != nil {
				return &fs.PathError{Op: "set mtime of", Path: local, Err: err}
			}
		}
		return l.replace(dirfd, tmp, e.Name, local, "symbolic link")
	}()
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return err
	}
	l.counts.links.Add(1)
	return nil
}

// replace renames tmp over name in dirfd; a directory in the way is
// removed first (the backup has a file or link there).
func (l *loader) replace(dirfd int, tmp, name, local, what string) error {
	err := unix.Renameat(dirfd, tmp, dirfd, name)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		if err := removeAll(dirfd, name); err != nil {
			return &fs.PathError{Op: "remove", Path: local, Err: err}
		}
		l.o.warn("%s: replaced a directory by the %s from the backup", local, what)
		err = unix.Renameat(dirfd, tmp, dirfd, name)
	}
	if err != nil {
		return &fs.PathError{Op: "rename into place", Path: local, Err: err}
	}
	return nil
}

// removeAll removes name in dirfd and, if it is a directory, everything
// in it, never following a link.
func removeAll(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	for _, n := range names {
		if err != nil {
			break
		}
		err = removeAll(fd, n)
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

func tempName() string { return fmt.Sprintf(".bunker-%016x.tmp", rand.Uint64()) }

// createTemp creates a new file under a temporary name in dirfd.
func createTemp(dirfd int) (string, int, error) {
	for range 100 {
		name := tempName()
		fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		return name, fd, err
	}
	return "", -1, unix.EEXIST
}
