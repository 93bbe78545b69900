//go:build !windows

package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
)

// timeout is how long the kernel may keep names and attributes: the
// snapshots never change while mounted.
const timeout = 10 * time.Minute

// Server is a mounted filesystem.
type Server struct {
	dir    string
	server *fuse.Server
}

// Dir is the mountpoint.
func (s *Server) Dir() string { return s.dir }

// Unmount unmounts the filesystem. It fails while files in it are open
// (EBUSY), as umount does.
func (s *Server) Unmount() error {
	if err := s.server.Unmount(); err != nil {
		return fmt.Errorf("unmount %s: %w", s.dir, err)
	}
	return nil
}

// Wait returns when the filesystem is unmounted (by Unmount or by
// fusermount3 -u).
func (s *Server) Wait() { s.server.Wait() }

// CheckFUSE returns an error wrapping ErrNoFUSE when /dev/fuse or the
// fusermount3 program is missing.
func CheckFUSE() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("%w: no FUSE device /dev/fuse (%v; load the fuse kernel module, or give a container --device /dev/fuse)", ErrNoFUSE, errors.Unwrap(err))
	}
	for _, name := range []string{"fusermount3", "/bin/fusermount3", "fusermount", "/bin/fusermount"} {
		if _, err := exec.LookPath(name); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: fusermount3 not found on PATH (install the fuse3 package)", ErrNoFUSE)
}

// Mount mounts snaps of repo at dir, read-only, and serves it until
// Unmount. dir must be an empty directory.
func Mount(repo Repo, snaps []*snapshot.Snapshot, dir string, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := CheckMountpoint(dir); err != nil {
		return nil, err
	}
	if err := CheckFUSE(); err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = defaultCacheBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	f := &filesys{
		repo:  repo,
		log:   opts.Logger,
		blobs: newLRU[tree.ID, []byte](opts.CacheBytes * 3 / 4),
		trees: newLRU[tree.ID, *tree.Tree](opts.CacheBytes / 4),
	}
	root := &rootDir{f: f, snaps: snaps}
	to := timeout
	server, err := gofs.Mount(dir, root, &gofs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther: opts.AllowOther,
			FsName:     "bunker",
			Name:       "bunker",
			Options:    []string{"ro", "default_permissions"},
		},
		EntryTimeout:    &to,
		AttrTimeout:     &to,
		NegativeTimeout: &to,
	})
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	return &Server{dir: dir, server: server}, nil
}

// filesys is what every node shares.
type filesys struct {
	repo  Repo
	log   *slog.Logger
	blobs *lru[tree.ID, []byte]
	trees *lru[tree.ID, *tree.Tree]
}

// errno turns an error of an operation into what the kernel gets,
// logging it: the caller sees only EIO.
func (f *filesys) errno(ctx context.Context, what string, err error) syscall.Errno {
	if ctx.Err() != nil {
		return syscall.EINTR
	}
	f.log.Error("mount: "+what, "err", err)
	return syscall.EIO
}

// tree loads a directory's tree (joined when split), through the cache.
func (f *filesys) tree(ctx context.Context, id tree.ID) (*tree.Tree, error) {
	if t, ok := f.trees.get(id); ok {
		return t, nil
	}
	t, err := walker.LoadTree(ctx, f.repo, id)
	if err != nil {
		return nil, err
	}
	size := 64
	for _, n := range t.Nodes {
		size += 256 + len(n.Name) + 32*len(n.Content) + len(n.LinkTarget)
	}
	f.trees.add(id, t, size)
	return t, nil
}

// blob loads a data blob through the cache. The slice is shared: it must
// not be modified.
func (f *filesys) blob(ctx context.Context, id tree.ID) ([]byte, error) {
	if b, ok := f.blobs.get(id); ok {
		return b, nil
	}
	b, err := f.repo.LoadBlob(ctx, pack.DataBlob, id, nil)
	if err != nil {
		return nil, err
	}
	f.blobs.add(id, b, cap(b))
	return b, nil
}

// rootDir is the mount's root; it builds the fixed directories below it
// when mounted.
type rootDir struct {
	gofs.Inode
	f     *filesys
	snaps []*snapshot.Snapshot
}

var _ gofs.NodeOnAdder = (*rootDir)(nil)

// staticDir is a directory of the fixed layout (snapshots/, hosts/…):
// its children are persistent inodes.
type staticDir struct {
	gofs.Inode
	mtime time.Time
}

func (d *staticDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = fuse.S_IFDIR | 0o555
	out.Nlink = 2
	out.SetTimes(&d.mtime, &d.mtime, &d.mtime)
	return 0
}

func (r *rootDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	t := newest(r.snaps)
	out.Mode = fuse.S_IFDIR | 0o555
	out.Nlink = 2
	out.SetTimes(&t, &t, &t)
	return 0
}

func newest(snaps []*snapshot.Snapshot) time.Time {
	var t time.Time
	for _, sn := range snaps {
		if sn.Time.After(t) {
			t = sn.Time
		}
	}
	return t
}

// OnAdd builds snapshots/, ids/, hosts/, tags/ and latest.
func (r *rootDir) OnAdd(ctx context.Context) {
	snaps := append([]*snapshot.Snapshot(nil), r.snaps...)
	sort.SliceStable(snaps, func(i, j int) bool {
		if !snaps[i].Time.Equal(snaps[j].Time) {
			return snaps[i].Time.Before(snaps[j].Time)
		}
		return snaps[i].ID.String() < snaps[j].ID.String()
	})
	names := SnapshotNames(snaps)
	ids := shortIDs(snaps)
	t := newest(snaps)
	mkdir := func(parent *gofs.Inode, name string, mtime time.Time) *gofs.Inode {
		if ch := parent.GetChild(name); ch != nil {
			return ch
		}
		ch := parent.NewPersistentInode(ctx, &staticDir{mtime: mtime}, gofs.StableAttr{Mode: fuse.S_IFDIR})
		parent.AddChild(name, ch, false)
		return ch
	}
	addSnap := func(parent *gofs.Inode, name string, sn *snapshot.Snapshot) {
		root := &tree.Node{Name: tree.RawString(name), Type: tree.TypeDir, Mode: uint32(fs.ModeDir | 0o755),
			ModTime: sn.Time, UID: sn.UID, GID: sn.GID, Subtree: &sn.Tree}
		ch := parent.NewPersistentInode(ctx, &dirNode{entry{f: r.f, n: root}}, gofs.StableAttr{Mode: fuse.S_IFDIR})
		parent.AddChild(name, ch, false)
	}
	snapDir := mkdir(r.EmbeddedInode(), "snapshots", t)
	idDir := mkdir(r.EmbeddedInode(), "ids", t)
	hostDir := mkdir(r.EmbeddedInode(), "hosts", t)
	tagDir := mkdir(r.EmbeddedInode(), "tags", t)
	for i, sn := range snaps {
		addSnap(snapDir, names[i], sn)
		addSnap(idDir, ids[i], sn)
		h := mkdir(hostDir, safeName(sn.Hostname), sn.Time)
		addSnap(h, names[i], sn)
		for _, tag := range sn.Tags {
			addSnap(mkdir(tagDir, safeName(tag), sn.Time), names[i], sn)
		}
	}
	if len(snaps) > 0 {
		link := &gofs.MemSymlink{Data: []byte("snapshots/" + names[len(names)-1])}
		link.Attr.Mode = 0o777
		link.Attr.Size = uint64(len(link.Data))
		link.Attr.Nlink = 1
		link.Attr.SetTimes(&t, &t, &t)
		r.AddChild("latest", r.NewPersistentInode(ctx, link, gofs.StableAttr{Mode: fuse.S_IFLNK}), false)
	}
}

// SnapshotNames names the snapshots, sorted by time, by their times
// (RFC 3339 in the zone they were taken in, as restic does); a name
// already taken gets "-1", "-2"… appended.
func SnapshotNames(snaps []*snapshot.Snapshot) []string {
	out := make([]string, len(snaps))
	used := make(map[string]bool, len(snaps))
	for i, sn := range snaps {
		base := sn.Time.Format(time.RFC3339)
		name := base
		for k := 1; used[name]; k++ {
			name = base + "-" + strconv.Itoa(k)
		}
		used[name] = true
		out[i] = name
	}
	return out
}

// shortIDs names snapshots by the first 8 hex digits of their IDs, or
// the whole ID when two share those.
func shortIDs(snaps []*snapshot.Snapshot) []string {
	count := make(map[string]int, len(snaps))
	for _, sn := range snaps {
		count[sn.ID.Short()]++
	}
	out := make([]string, len(snaps))
	for i, sn := range snaps {
		out[i] = sn.ID.Short()
		if count[out[i]] > 1 {
			out[i] = sn.ID.String()
		}
	}
	return out
}

// safeName makes a host name or tag usable as a file name.
func safeName(s string) string {
	s = strings.ReplaceAll(s, "/", "_")
	if s == "" || s == "." || s == ".." {
		return "_" + s
	}
	return s
}

// entry is a node of a snapshot's tree.
type entry struct {
	gofs.Inode
	f *filesys
	n *tree.Node
}

func (e *entry) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	fillAttr(&out.Attr, e.n)
	return 0
}

// fillAttr sets a's fields from the tree node.
func fillAttr(a *fuse.Attr, n *tree.Node) {
	m := fs.FileMode(n.Mode)
	a.Mode = typeBits(n.Type) | uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		a.Mode |= syscall.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		a.Mode |= syscall.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		a.Mode |= syscall.S_ISVTX
	}
	a.Size = n.Size
	if n.Type == tree.TypeSymlink {
		a.Size = uint64(len(n.LinkTarget))
	}
	a.Blocks = (a.Size + 511) / 512
	a.Nlink = 1
	if n.Type == tree.TypeDir {
		a.Nlink = 2
	}
	a.Owner = fuse.Owner{Uid: n.UID, Gid: n.GID}
	a.Rdev = uint32(n.Device)
	mtime, atime, ctime := n.ModTime, n.AccessTime, n.ChangeTime
	if atime.IsZero() {
		atime = mtime
	}
	if ctime.IsZero() {
		ctime = mtime
	}
	a.SetTimes(&atime, &mtime, &ctime)
}

func typeBits(t tree.NodeType) uint32 {
	switch t {
	case tree.TypeDir:
		return fuse.S_IFDIR
	case tree.TypeSymlink:
		return fuse.S_IFLNK
	case tree.TypeFIFO:
		return fuse.S_IFIFO
	case tree.TypeDev:
		return syscall.S_IFBLK
	case tree.TypeCharDev:
		return syscall.S_IFCHR
	case tree.TypeSocket:
		return syscall.S_IFSOCK
	}
	return fuse.S_IFREG
}

// dirNode is a directory of a snapshot's tree.
type dirNode struct{ entry }

var (
	_ gofs.NodeLookuper  = (*dirNode)(nil)
	_ gofs.NodeReaddirer = (*dirNode)(nil)
	_ gofs.NodeGetattrer = (*dirNode)(nil)
)

func (d *dirNode) load(ctx context.Context) (*tree.Tree, syscall.Errno) {
	if d.n.Subtree == nil { // an entry that could not be read at backup
		return &tree.Tree{}, 0
	}
	t, err := d.f.tree(ctx, *d.n.Subtree)
	if err != nil {
		return nil, d.f.errno(ctx, "list "+d.Path(nil), err)
	}
	return t, 0
}

func (d *dirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	t, errno := d.load(ctx)
	if errno != 0 {
		return nil, errno
	}
	list := make([]fuse.DirEntry, 0, len(t.Nodes))
	for _, n := range t.Nodes {
		list = append(list, fuse.DirEntry{Name: string(n.Name), Mode: typeBits(n.Type)})
	}
	return gofs.NewListDirStream(list), 0
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	t, errno := d.load(ctx)
	if errno != 0 {
		return nil, errno
	}
	n := t.Find(name)
	if n == nil {
		return nil, syscall.ENOENT
	}
	fillAttr(&out.Attr, n)
	// The kernel forgot the name but not the inode: keep its number.
	if ch := d.GetChild(name); ch != nil {
		return ch, 0
	}
	var node gofs.InodeEmbedder
	switch n.Type {
	case tree.TypeDir:
		node = &dirNode{entry{f: d.f, n: n}}
	case tree.TypeFile:
		node = &fileNode{entry: entry{f: d.f, n: n}}
	case tree.TypeSymlink:
		node = &linkNode{entry{f: d.f, n: n}}
	default: // FIFOs, devices, sockets: attributes only
		node = &entry{f: d.f, n: n}
	}
	return d.NewInode(ctx, node, gofs.StableAttr{Mode: typeBits(n.Type)}), 0
}

// linkNode is a symbolic link.
type linkNode struct{ entry }

var _ gofs.NodeReadlinker = (*linkNode)(nil)

func (l *linkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	return []byte(l.n.LinkTarget), 0
}

// fileNode is a regular file.
type fileNode struct {
	entry
	once sync.Once
	offs []int64 // offs[i]: where blob i starts; offs[len(Content)]: the size
	err  error
}

var (
	_ gofs.NodeOpener = (*fileNode)(nil)
	_ gofs.NodeReader = (*fileNode)(nil)
)

// Open refuses writing; the content never changes, so the kernel may
// keep what it cached.
func (n *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND|syscall.O_CREAT) != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

// offsets computes where each blob of the file starts, from the blob
// lengths in the index.
func (n *fileNode) offsets() ([]int64, error) {
	n.once.Do(func() {
		offs := make([]int64, len(n.n.Content)+1)
		for i, id := range n.n.Content {
			l, ok := n.f.repo.BlobLength(id, pack.DataBlob)
			if !ok {
				n.err = fmt.Errorf("data blob %s: not in index", id.Short())
				return
			}
			offs[i+1] = offs[i] + int64(l)
		}
		n.offs = offs
	})
	return n.offs, n.err
}

// Read reads the blobs covering [off, off+len(dest)).
func (n *fileNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	offs, err := n.offsets()
	if err != nil {
		return nil, n.f.errno(ctx, "read "+n.Path(nil), err)
	}
	size := offs[len(offs)-1]
	end := min(off+int64(len(dest)), size)
	if off >= end {
		return fuse.ReadResultData(nil), 0
	}
	// The first blob that ends after off.
	i := sort.Search(len(offs)-1, func(i int) bool { return offs[i+1] > off })
	done := 0
	for pos := off; pos < end; i++ {
		data, err := n.f.blob(ctx, n.n.Content[i])
		if err != nil {
			return nil, n.f.errno(ctx, "read "+n.Path(nil), err)
		}
		if int64(len(data)) != offs[i+1]-offs[i] {
			return nil, n.f.errno(ctx, "read "+n.Path(nil), fmt.Errorf("data blob %s: %d bytes, the index says %d", n.n.Content[i].Short(), len(data), offs[i+1]-offs[i]))
		}
		c := copy(dest[done:end-off], data[pos-offs[i]:])
		done += c
		pos += int64(c)
	}
	return fuse.ReadResultData(dest[:done]), 0
}
