package vfs

import (
	"io"
	"io/fs"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// FS is a filesystem. Paths are absolute and in the host's syntax; they
// name what the user chose (backup sources, a restore target), so links
// on the way to them are followed.
type FS interface {
	// OpenDir opens the directory at path.
	OpenDir(path string) (Dir, error)
	// Node reads the metadata of the entry at path, not following a link
	// there, as fsmeta.Reader.Node does (with xattrs when asked; if only
	// those fail, the node comes back with the error).
	Node(path string, xattrs bool) (*tree.Node, error)
	// MkdirAll creates the directory at path and its missing parents
	// (mode 0700); an existing directory is fine.
	MkdirAll(path string) error
	// Apply sets the metadata of n on the entry at path (see Dir.Apply).
	Apply(path string, n *tree.Node, m Meta) error
}

// Meta says which metadata Apply restores besides mode and times.
type Meta struct {
	// Owner restores uid and gid, where the filesystem can (the OS one
	// only as root).
	Owner bool
	// Xattrs restores extended attributes.
	Xattrs bool
}

// Dir is an open directory. Every name is a single path component (one
// that is not is an error); nothing is resolved through a symbolic link
// at name. A Dir is safe for concurrent use, except Names, whose position
// is the Dir's own.
type Dir interface {
	// Name is the directory's path, for messages.
	Name() string
	Close() error

	// Names returns the next n names of the directory like
	// os.File.Readdirnames: n <= 0 returns all the rest and a nil error;
	// n > 0 returns io.EOF at the end.
	Names(n int) ([]string, error)
	// Node reads the metadata of the entry name (fsmeta.Reader.NodeAt).
	Node(name string, xattrs bool) (*tree.Node, error)
	// Lstat is os.Lstat of the entry name.
	Lstat(name string) (fs.FileInfo, error)
	// Xattrs reads the extended attributes of the directory itself;
	// XattrsAt those of the entry name.
	Xattrs() ([]tree.Xattr, error)
	XattrsAt(name string) ([]tree.Xattr, error)
	// OpenDir opens the directory name.
	OpenDir(name string) (Dir, error)
	// OpenFile opens the regular file name for reading; anything else
	// is an error.
	OpenFile(name string) (File, error)

	// Create makes the entry n under name with restrictive permissions
	// (fsmeta.Restorer.CreateAt): a directory (an existing one is fine),
	// an empty regular file (created exclusively), a symlink, a FIFO or a
	// device node; a socket is not created.
	Create(name string, n *tree.Node) error
	// Apply sets the metadata of n on the entry name: owner, xattrs (as m
	// says), mode, then times, trying every step and joining failures.
	Apply(name string, n *tree.Node, m Meta) error
	// CreateFile creates the new regular file name (mode 0600) for
	// content of the given size; an existing entry is an error wrapping
	// fs.ErrExist.
	CreateFile(name string, size int64) (Writer, error)
	// Rename renames name to newname in newdir (a Dir of the same FS),
	// replacing a file or link there.
	Rename(name string, newdir Dir, newname string) error
	// Link makes newname in newdir a hard link to name.
	Link(name string, newdir Dir, newname string) error
	// RemoveAll removes the entry name and everything below it; a
	// missing entry is not an error.
	RemoveAll(name string) error
}

// File is a regular file open for reading.
type File interface {
	io.Reader
	io.Seeker
	io.Closer
	// Name is the file's path, for messages.
	Name() string
	// Xattrs reads the file's extended attributes.
	Xattrs() ([]tree.Xattr, error)
}

// DataFinder is implemented by a File that can tell where its data lies
// (an OS file on Linux, through lseek SEEK_DATA and SEEK_HOLE), so that a
// reader can skip the holes of a sparse file instead of reading their
// zeros. Find it by type assertion.
type DataFinder interface {
	// NextData returns the first region of data at or after off: data
	// begins at start (>= off) and the next hole, or the end of the file,
	// at end (> start). When only a hole follows off, or off is at or
	// past the end of the file, start and end are both the file's size.
	// The read position is left unspecified: seek before reading. An
	// error means nothing is known (the filesystem cannot tell, or
	// failed): read the file instead.
	NextData(off int64) (start, end int64, err error)
}

// Writer writes the content of a new file (fsmeta.FileWriter).
type Writer interface {
	// WriteAt writes p at off; writing past the size given at creation is
	// an error. Safe for disjoint ranges from several goroutines.
	WriteAt(p []byte, off int64) (int, error)
	// Sync commits what was written to stable storage.
	Sync() error
	// Close sets the file to its final size and closes it. Ranges never
	// written read as zeros (holes, where the filesystem has them): a
	// restore does not write the chunks it knows to be all zeros.
	Close() error
}

// Prefetch hints that the first n bytes of f will be read soon, when f
// can take the hint (an OS file starts reading them ahead).
func Prefetch(f File, n int64) {
	if p, ok := f.(interface{ Prefetch(n int64) }); ok {
		p.Prefetch(n)
	}
}

// Links is how many names (hard links) the file of fi has, as an FS's
// Lstat reports it; 1 when fi cannot tell (a platform without link
// counts).
func Links(fi fs.FileInfo) uint64 {
	if l, ok := fi.(interface{ Links() uint64 }); ok {
		return l.Links()
	}
	return 1
}
