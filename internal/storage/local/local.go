package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/storage"
)

const (
	// tempPrefix starts the name of every temporary file a Save writes.
	// No valid object name starts with a dot, so List never mistakes one
	// for an object.
	tempPrefix = ".tmp-"
	configName = "config"
	// dirMode and fileMode are the modes of a private repository; a
	// group-accessible one adds group bits (see perms).
	dirMode  = 0o700
	fileMode = 0o400
	// readDirBatch is how many directory entries List reads at a time.
	readDirBatch = 1024
)

// Backend stores a repository in a local directory. It holds no mutable
// state and is safe for concurrent use, also by several processes.
type Backend struct {
	dir   string
	perm  perms    // of new files and directories, read when opened
	packs *fdCache // open pack files for Load
}

var _ storage.Backend = (*Backend)(nil)

// New opens the existing repository directory dir. The error wraps
// storage.ErrNotExist when dir does not exist.
func New(dir string) (*Backend, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, mapErr(err))
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("open repository %s: not a directory", dir)
	}
	return &Backend{dir: abs, perm: repoPerms(abs), packs: newFDCache(64)}, nil
}

// Create makes the repository directory dir (and its parents) with the
// subdirectory of every object type, and opens it. An existing empty
// directory is fine; one that already holds a config fails with an error
// wrapping storage.ErrExists. The subdirectories take the owner of an
// existing dir when root creates them (see perms).
func Create(dir string) (*Backend, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("create repository %s: %w", dir, err)
	}
	_, err = os.Lstat(filepath.Join(abs, configName))
	switch {
	case err == nil:
		return nil, fmt.Errorf("create repository %s: config: %w", dir, storage.ErrExists)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("create repository %s: %w", dir, mapErr(err))
	}
	if err := os.MkdirAll(abs, dirMode); err != nil {
		return nil, fmt.Errorf("create repository %s: %w", dir, mapErr(err))
	}
	b := &Backend{dir: abs, perm: repoPerms(abs), packs: newFDCache(64)}
	for _, t := range storage.AllTypes {
		if t == storage.ConfigFile {
			continue
		}
		if err := b.mkdir(filepath.Join(abs, string(t))); err != nil {
			return nil, fmt.Errorf("create repository %s: %w", dir, err)
		}
	}
	for _, d := range []string{abs, filepath.Dir(abs)} {
		if err := fsyncDir(d); err != nil {
			return nil, fmt.Errorf("create repository %s: sync %s: %w", dir, d, mapErr(err))
		}
	}
	return b, nil
}

// Location returns "local:" and the absolute repository path.
func (b *Backend) Location() string { return "local:" + b.dir }

// Features reports atomic conditional create (via hard links) and nothing
// else.
func (b *Backend) Features() storage.Features {
	return storage.Features{ConditionalCreate: true}
}

// Close does nothing: the backend holds no resources.
func (b *Backend) Close() error { return nil }

// dirOf is the directory holding the object of a valid handle.
func (b *Backend) dirOf(h storage.Handle) string {
	switch h.Type {
	case storage.ConfigFile:
		return b.dir
	case storage.PackFile:
		return filepath.Join(b.dir, string(storage.PackFile), storage.PackShard(h.Name))
	default:
		return filepath.Join(b.dir, string(h.Type))
	}
}

// path is the file of the object of a valid handle.
func (b *Backend) path(h storage.Handle) string {
	if h.Type == storage.ConfigFile {
		return filepath.Join(b.dir, configName)
	}
	return filepath.Join(b.dirOf(h), h.Name)
}

// Save writes data to a temporary file next to the object, syncs it and
// moves it into place (replacing, or with opts.IfNotExists hard-linking,
// which fails with storage.ErrExists if the object exists), then syncs the
// directory. opts.RetainUntil is ignored.
func (b *Backend) Save(ctx context.Context, h storage.Handle, data []byte, opts storage.SaveOptions) error {
	if err := h.Valid(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	dir, final := b.dirOf(h), b.path(h)
	base := h.Name
	if base == "" {
		base = configName
	}
	tmp, err := b.writeTemp(dir, base, data)
	if err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	if err := ctx.Err(); err != nil {
		_ = removeFile(tmp)
		return fmt.Errorf("save %v: %w", h, err)
	}
	if opts.IfNotExists {
		// link(2) fails if final exists, which makes the create atomic;
		// the temporary name is dropped afterwards either way.
		// Should removing the temporary name fail, the object is still
		// in place and RemoveStaleTemp deletes the leftover later.
		err := os.Link(tmp, final)
		_ = removeFile(tmp)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("save %v: %w", h, storage.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("save %v: %w", h, denied("link", final, dir, err))
		}
	} else if err := replaceFile(tmp, final); err != nil {
		_ = removeFile(tmp)
		return fmt.Errorf("save %v: %w", h, denied("rename to", final, dir, err))
	}
	if err := fsyncDir(dir); err != nil {
		return fmt.Errorf("save %v: sync directory: %w", h, mapErr(err))
	}
	return nil
}

// writeTemp writes data to a new synced, read-only temporary file in dir,
// creating dir if needed, and returns its path. The file has the
// repository's owner and file mode.
func (b *Backend) writeTemp(dir, base string, data []byte) (string, error) {
	pattern := tempPrefix + base + "-*"
	f, err := os.CreateTemp(dir, pattern)
	if errors.Is(err, fs.ErrNotExist) {
		if err := b.mkdirAll(dir); err != nil {
			return "", err
		}
		f, err = os.CreateTemp(dir, pattern)
	}
	if err != nil {
		return "", denied("create a file in", dir, dir, err)
	}
	name := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = b.perm.chown(f, name)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		dropCache(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(name, b.perm.file)
	}
	if err != nil {
		_ = removeFile(name)
		return "", mapErr(err)
	}
	return name, nil
}

// mkdirAll creates dir, which lies inside the repository, and syncs the
// parent of every directory it created.
func (b *Backend) mkdirAll(dir string) error {
	var missing []string
	for d := dir; len(d) > len(b.dir); d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := b.mkdir(missing[i]); err != nil {
			return err
		}
	}
	for _, d := range missing {
		if err := fsyncDir(filepath.Dir(d)); err != nil {
			return fmt.Errorf("sync %s: %w", filepath.Dir(d), mapErr(err))
		}
	}
	return nil
}

// mkdir creates the directory d, whose parent exists, with the
// repository's owner and directory mode (whatever the umask). One that
// exists already (another writer made it) is left as it is.
func (b *Backend) mkdir(d string) error {
	err := os.Mkdir(d, dirMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return denied("create directory", d, filepath.Dir(d), err)
	}
	if err := b.perm.chown(nil, d); err != nil {
		return err
	}
	if b.perm.dir != dirMode {
		if err := os.Chmod(d, b.perm.dir); err != nil {
			return mapErr(err)
		}
	}
	return nil
}

// Load calls fn with a reader of length bytes of the object from offset
// (length 0: to the end). A range past the end of the object is an error.
func (b *Backend) Load(ctx context.Context, h storage.Handle, length int, offset int64, fn func(rd io.Reader) error) error {
	if err := h.Valid(); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("load %v: %w", h, err)
	}
	if length < 0 || offset < 0 {
		return storage.Permanent(fmt.Errorf("load %v: invalid range: offset %d, length %d", h, offset, length))
	}
	var f *os.File
	var size int64
	if h.Type == storage.PackFile && b.packs != nil {
		cf, err := b.packs.get(b.path(h), openRegular)
		if err != nil {
			return fmt.Errorf("load %v: %w", h, err)
		}
		defer b.packs.put(cf)
		f, size = cf.f, cf.size
	} else {
		var err error
		f, size, err = openRegular(b.path(h))
		if err != nil {
			return fmt.Errorf("load %v: %w", h, err)
		}
		defer func() { _ = f.Close() }()
	}
	n, err := storage.RangeLength(size, length, offset)
	if err != nil {
		return fmt.Errorf("load %v: %w", h, err)
	}
	if err := fn(io.NewSectionReader(f, offset, n)); err != nil {
		return fmt.Errorf("load %v: %w", h, err)
	}
	return nil
}

// Stat returns the size and modification time of an object.
func (b *Backend) Stat(ctx context.Context, h storage.Handle) (storage.FileInfo, error) {
	if err := h.Valid(); err != nil {
		return storage.FileInfo{}, fmt.Errorf("stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return storage.FileInfo{}, fmt.Errorf("stat %v: %w", h, err)
	}
	fi, err := os.Stat(b.path(h))
	if err != nil {
		return storage.FileInfo{}, fmt.Errorf("stat %v: %w", h, mapErr(err))
	}
	if !fi.Mode().IsRegular() {
		return storage.FileInfo{}, fmt.Errorf("stat %v: %s is not a regular file", h, b.path(h))
	}
	return storage.FileInfo{Name: h.Name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List calls fn for every object of type t. Temporary files, files whose
// names are not valid object names, and packs in the wrong shard directory
// (which Load could not find) are skipped. An error from fn stops the
// listing and is returned as it is.
func (b *Backend) List(ctx context.Context, t storage.FileType, fn func(storage.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	switch t {
	case storage.ConfigFile:
		fi, err := os.Lstat(b.path(storage.Handle{Type: t}))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", t, mapErr(err))
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		return fn(storage.FileInfo{Size: fi.Size(), ModTime: fi.ModTime()})
	case storage.PackFile:
		root := filepath.Join(b.dir, string(t))
		var shards []string
		err := readDir(ctx, root, func(e fs.DirEntry) error {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				shards = append(shards, e.Name())
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("list %s: %w", t, err)
		}
		for _, s := range shards {
			err := b.listDir(ctx, t, filepath.Join(root, s), func(name string) bool { return storage.PackShard(name) == s }, fn)
			if err != nil {
				return err
			}
		}
		return nil
	case storage.KeyFile, storage.IndexFile, storage.SnapshotFile, storage.SessionFile, storage.MaintFile:
		return b.listDir(ctx, t, filepath.Join(b.dir, string(t)), nil, fn)
	default:
		return storage.Permanent(fmt.Errorf("list %q: unknown file type", t))
	}
}

// errStop is how a callback of readDir passes an error of fn through.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }

// listDir calls fn for the regular files in dir with valid names of type t
// that keep (if not nil) accepts.
func (b *Backend) listDir(ctx context.Context, t storage.FileType, dir string, keep func(string) bool, fn func(storage.FileInfo) error) error {
	err := readDir(ctx, dir, func(e fs.DirEntry) error {
		name := e.Name()
		if (storage.Handle{Type: t, Name: name}).Valid() != nil || keep != nil && !keep(name) || !e.Type().IsRegular() {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed since the directory was read
		}
		if err != nil {
			return mapErr(err)
		}
		if err := fn(storage.FileInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return errStop{err}
		}
		return nil
	})
	var stop errStop
	if errors.As(err, &stop) {
		return stop.err
	}
	if err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	return nil
}

// readDir calls fn for every entry of dir, reading it in batches. A missing
// dir has no entries.
func readDir(ctx context.Context, dir string, fn func(fs.DirEntry) error) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return denied("open", dir, dir, err)
	}
	defer func() { _ = d.Close() }()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, rerr := d.ReadDir(readDirBatch)
		for _, e := range entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return mapErr(rerr)
		}
	}
}

// Remove deletes an object; a missing object is not an error.
func (b *Backend) Remove(ctx context.Context, h storage.Handle) error {
	if err := h.Valid(); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove %v: %w", h, err)
	}
	if h.Type == storage.PackFile && b.packs != nil {
		b.packs.evict(b.path(h))
	}
	err := removeFile(b.path(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %v: %w", h, denied("remove", b.path(h), b.dirOf(h), err))
	}
	if err := fsyncDir(b.dirOf(h)); err != nil {
		return fmt.Errorf("remove %v: sync directory: %w", h, mapErr(err))
	}
	return nil
}

// RemoveStaleTemp deletes the temporary files that writers which crashed
// (or were killed) left behind, if they were last modified at least
// olderThan ago, and returns how many it deleted. olderThan should be well
// above the time one Save takes, or it deletes the files of running
// writers, whose Saves then fail. Errors do not stop the sweep; they are
// returned together.
func (b *Backend) RemoveStaleTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	dirs := []string{b.dir}
	for _, t := range storage.AllTypes {
		if t != storage.ConfigFile {
			dirs = append(dirs, filepath.Join(b.dir, string(t)))
		}
	}
	packs := filepath.Join(b.dir, string(storage.PackFile))
	err := readDir(ctx, packs, func(e fs.DirEntry) error {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(packs, e.Name()))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("remove stale temporary files: %s: %w", packs, err)
	}
	var (
		n    int
		errs []error
	)
	for _, dir := range dirs {
		removed := false
		err := readDir(ctx, dir, func(e fs.DirEntry) error {
			if !strings.HasPrefix(e.Name(), tempPrefix) || !e.Type().IsRegular() {
				return nil
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				errs = append(errs, mapErr(err))
				return nil
			}
			if fi.ModTime().After(cutoff) {
				return nil
			}
			err = removeFile(filepath.Join(dir, e.Name()))
			switch {
			case err == nil:
				n++
				removed = true
			case !errors.Is(err, fs.ErrNotExist):
				errs = append(errs, mapErr(err))
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
		}
		if removed {
			if err := fsyncDir(dir); err != nil {
				errs = append(errs, fmt.Errorf("sync %s: %w", dir, mapErr(err)))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("remove stale temporary files: %w", err)
	}
	return n, nil
}

// openRegular opens a regular file for reading and returns its size.
func openRegular(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, denied("open", path, path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, mapErr(err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", path)
	}
	return f, fi.Size(), nil
}
