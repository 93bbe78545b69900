package source

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"path"
	"time"
)

// Meta is the metadata of one entry a source adds. A zero Mode means 0600
// for files and 0700 for directories; a zero ModTime means the time the
// backup started.
type Meta struct {
	Mode    fs.FileMode
	ModTime time.Time
	UID     uint32
	GID     uint32
	User    string
	Group   string
}

// Sink receives the files of one backup. Paths are slash-separated and
// relative ("db/app.dump"); parent directories are created as needed.
// Every method may be called from several goroutines at once.
type Sink interface {
	// WriteFile streams rd into the repository as the file p and returns
	// its size. When rd fails, the backup must fail: nothing is added.
	WriteFile(ctx context.Context, p string, rd io.Reader, m *Meta) (int64, error)
	// Mkdir adds a directory with the given metadata.
	Mkdir(p string, m *Meta) error
	// Symlink adds a symbolic link.
	Symlink(p, target string, m *Meta) error
}

// EntryType is the kind of a backup entry.
type EntryType string

// The entry types a source sees.
const (
	TypeFile    EntryType = "file"
	TypeDir     EntryType = "dir"
	TypeSymlink EntryType = "symlink"
)

// Entry is one file, directory or link of a backup.
type Entry struct {
	Name   string
	Type   EntryType
	Size   int64
	Target string // of a symlink
	Meta
}

// Tree reads the files of one backup back.
type Tree interface {
	// Stat returns the entry at p ("" is the root directory).
	Stat(ctx context.Context, p string) (Entry, error)
	// List returns the entries of the directory p in name order.
	List(ctx context.Context, p string) ([]Entry, error)
	// Open streams the file at p.
	Open(ctx context.Context, p string) (io.ReadCloser, error)
}

// ReadFile returns the content of the (small) file at p.
func ReadFile(ctx context.Context, t Tree, p string) ([]byte, error) {
	rc, err := t.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// WriteBytes adds a small file.
func WriteBytes(ctx context.Context, s Sink, p string, b []byte, m *Meta) error {
	_, err := s.WriteFile(ctx, p, bytes.NewReader(b), m)
	return err
}

// PrefixSink returns a Sink that adds every path under dir (a relative,
// slash-separated path) of s, so one backup can hold several sources.
func PrefixSink(s Sink, dir string) Sink { return prefixSink{s, dir} }

type prefixSink struct {
	s   Sink
	dir string
}

func (p prefixSink) WriteFile(ctx context.Context, name string, rd io.Reader, m *Meta) (int64, error) {
	return p.s.WriteFile(ctx, path.Join(p.dir, name), rd, m)
}
func (p prefixSink) Mkdir(name string, m *Meta) error { return p.s.Mkdir(path.Join(p.dir, name), m) }
func (p prefixSink) Symlink(name, target string, m *Meta) error {
	return p.s.Symlink(path.Join(p.dir, name), target, m)
}

// PrefixTree returns the Tree of the directory dir of t.
func PrefixTree(t Tree, dir string) Tree { return prefixTree{t, dir} }

type prefixTree struct {
	t   Tree
	dir string
}

func (p prefixTree) Stat(ctx context.Context, name string) (Entry, error) {
	return p.t.Stat(ctx, path.Join(p.dir, name))
}
func (p prefixTree) List(ctx context.Context, name string) ([]Entry, error) {
	return p.t.List(ctx, path.Join(p.dir, name))
}
func (p prefixTree) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	return p.t.Open(ctx, path.Join(p.dir, name))
}
