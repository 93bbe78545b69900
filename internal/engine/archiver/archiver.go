package archiver

import (
	"context"
	"errors"
	"fmt"
	"github.com/bunkerbackup/bunker/internal/bufpool"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/chunker"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/vfs"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
)

// ID of a blob.
type ID = tree.ID

// Repo is what the archiver needs of a repository.
type Repo interface {
	SaveBlobWithID(ctx context.Context, t pack.BlobType, id ID, data []byte) (ID, bool, error)
	LoadBlob(ctx context.Context, t pack.BlobType, id ID, buf []byte) ([]byte, error)
	Hash(data []byte) ID
	// NoteReuse records reliance on an already stored blob; false means no
	// usable copy exists (the blob must be stored again).
	NoteReuse(id ID, t pack.BlobType) bool
	Flush(ctx context.Context) error
}

// Excluder decides which paths to leave out.
type Excluder interface {
	Excluded(absPath string, isDir bool) bool
	// ExcludedByMarkerAt reports whether a directory holds a marker file
	// (--exclude-if-present, --exclude-caches); its contents other than
	// the marker (IsMarkerName) are then left out. It is asked only of
	// directories of the OS filesystem (see vfs.OSFile).
	ExcludedByMarkerAt(dir *os.File) (bool, error)
	IsMarkerName(name string) bool
}

// Options configure an Archiver.
type Options struct {
	Chunker chunker.Params
	// Excluder may be nil.
	Excluder Excluder
	// OneFileSystem keeps the walk on the filesystems of the given paths;
	// mount points below them are stored as empty directories.
	OneFileSystem bool
	// Parent is the root tree of the snapshot to compare with; unchanged
	// files are not read again. Zero means none (every file is read).
	Parent ID
	// Readers is how many files are read at once (default GOMAXPROCS+1).
	Readers int
	// Savers is how many chunks are hashed, compressed and sealed at once
	// (default GOMAXPROCS).
	Savers int
	// CheckpointBytes and CheckpointInterval make the archiver flush packs
	// and an index file that often, so an interrupted backup is resumed
	// without re-uploading. Defaults 256 MiB and 5 minutes.
	CheckpointBytes    int64
	CheckpointInterval time.Duration
	// Xattrs stores extended attributes (default on; set NoXattrs).
	NoXattrs bool
	// WithAtime stores access times. Off by default, like borg: reading
	// a tree to back it up changes directory atimes, so storing them
	// rewrites every directory's tree at every backup.
	WithAtime bool
	// OnError is called for a source problem (unreadable file, vanished
	// path). Returning nil skips the entry and goes on; returning an error
	// aborts. Nil means skip.
	OnError func(path string, err error) error
	// FS is the filesystem backed up (default the real one, vfs.NewOS()).
	FS vfs.FS
	// OnFile, if set, is told of every regular file as it is judged
	// against the parent: FileNew, FileModified or FileUnchanged. It is
	// called from several goroutines at once.
	OnFile func(path string, change FileChange)
}

// FileChange is how a file compares with the parent snapshot.
type FileChange int

const (
	FileNew       FileChange = iota + 1 // not in the parent
	FileModified                        // in the parent, read again
	FileUnchanged                       // in the parent, reused without reading
)

func (c FileChange) String() string {
	switch c {
	case FileNew:
		return "new"
	case FileModified:
		return "modified"
	case FileUnchanged:
		return "unchanged"
	}
	return "?"
}

func (a *Archiver) onFile(path string, c FileChange) {
	if a.opts.OnFile != nil {
		a.opts.OnFile(path, c)
	}
}

// Stats are live counters; read them with Load while the backup runs.
type Stats struct {
	Files, Dirs, Others       atomic.Int64
	FilesNew, FilesChanged    atomic.Int64
	FilesUnchanged, FilesRead atomic.Int64
	Errors                    atomic.Int64
	BytesRead, TotalBytes     atomic.Int64
	BlobsAdded, BytesAdded    atomic.Int64
	CurrentFile               atomic.Pointer[string]
	// HoleBytes counts the bytes of BytesRead that were holes of sparse
	// files, produced as zeros without reading them.
	HoleBytes atomic.Int64
}

// Archiver performs one backup.
type Archiver struct {
	repo  Repo
	opts  Options
	fs    vfs.FS
	Stats Stats

	bufs      bufpool.List // chunk buffers
	saveQueue chan saveJob
	fileQueue chan fileJob

	errMu    sync.Mutex
	fatalErr error

	sinceCheckpoint atomic.Int64

	bigSem      chan struct{}
	bigMu       sync.Mutex
	bigChunkers []*chunker.Chunker // free chunkers for files larger than Min

	zeros zeroIDs

	walkSem chan struct{} // scans running in goroutines of their own (walkDir)
}

// fileQueueLen is how many opened files may wait for a reader, each with
// up to prefetchBytes of it being read ahead: on a cold page cache that
// keeps the disk busy with many requests instead of one file at a time.
const (
	fileQueueLen  = 32
	prefetchBytes = 4 << 20
)

// bigFiles is how many files larger than Min are chunked at once.
const bigFiles = 2

// New returns an archiver writing to repo.
func New(repo Repo, opts Options) (*Archiver, error) {
	if err := opts.Chunker.Validate(); err != nil {
		return nil, err
	}
	if opts.Readers <= 0 {
		opts.Readers = runtime.GOMAXPROCS(0) + 1
	}
	if opts.Savers <= 0 {
		opts.Savers = runtime.GOMAXPROCS(0)
	}
	if opts.CheckpointBytes <= 0 {
		opts.CheckpointBytes = 256 << 20
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 5 * time.Minute
	}
	fsys := opts.FS
	if fsys == nil {
		fsys = vfs.NewOS()
	}
	a := &Archiver{repo: repo, opts: opts, fs: fsys,
		bigSem: make(chan struct{}, bigFiles), walkSem: make(chan struct{}, extraWalkers)}
	for i := 0; i < bigFiles; i++ {
		a.bigChunkers = append(a.bigChunkers, chunker.New(nil, opts.Chunker))
	}
	// Buffers start empty and grow to the chunks they carry, so memory
	// follows the chunks in flight rather than Max-sized slabs.
	a.bufs = bufpool.New(opts.Savers+opts.Readers+2, 3<<20)
	return a, nil
}

func (a *Archiver) setFatal(err error) {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	if a.fatalErr == nil {
		a.fatalErr = err
	}
}

func (a *Archiver) fatal() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.fatalErr
}

// sourceError reports a problem with one source entry.
func (a *Archiver) sourceError(path string, err error) error {
	a.Stats.Errors.Add(1)
	if a.opts.OnError != nil {
		return a.opts.OnError(path, err)
	}
	return nil
}

// future is the pending result of a child entry.
type future struct {
	done chan struct{}
	node *tree.Node // nil when the entry was skipped
	err  error      // fatal only
}

func resolved(n *tree.Node) *future {
	f := &future{done: make(chan struct{}), node: n}
	close(f.done)
	return f
}

type saveJob struct {
	ctx  context.Context
	typ  pack.BlobType
	buf  []byte
	res  chan saveResult
	size int
}

type saveResult struct {
	id    ID
	added bool
	err   error
}

type fileJob struct {
	ctx    context.Context
	f      vfs.File
	path   string
	node   *tree.Node
	result *future
}

// start launches the worker pools; stop waits for them.
func (a *Archiver) start(ctx context.Context) (stop func()) {
	a.saveQueue = make(chan saveJob, a.opts.Savers)
	a.fileQueue = make(chan fileJob, fileQueueLen)
	var wg sync.WaitGroup
	for i := 0; i < a.opts.Savers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range a.saveQueue {
				data := j.buf[:j.size]
				id := a.hashChunk(data)
				id, added, err := a.repo.SaveBlobWithID(j.ctx, j.typ, id, data)
				if added {
					a.Stats.BlobsAdded.Add(1)
					a.Stats.BytesAdded.Add(int64(len(data)))
					a.sinceCheckpoint.Add(int64(len(data)))
				}
				a.bufs.Put(j.buf)
				j.res <- saveResult{id: id, added: added, err: err}
			}
		}()
	}
	var fwg sync.WaitGroup
	for i := 0; i < a.opts.Readers; i++ {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for j := range a.fileQueue {
				err := a.readFile(j.ctx, j.f, j.path, j.node)
				j.f.Close()
				switch {
				case err == nil:
					j.result.node = j.node
				case isFatal(err):
					j.result.err = err
				default:
					if e := a.sourceError(j.path, err); e != nil {
						j.result.err = e
					}
				}
				close(j.result.done)
			}
		}()
	}
	return func() {
		close(a.fileQueue)
		fwg.Wait()
		close(a.saveQueue)
		wg.Wait()
	}
}

// fatalError marks repository-side errors that must abort the backup, as
// opposed to problems reading one source file.
type fatalError struct{ err error }

func (e fatalError) Error() string { return e.err.Error() }
func (e fatalError) Unwrap() error { return e.err }

func isFatal(err error) bool {
	var fe fatalError
	return errors.As(err, &fe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// saveChunks chunks rd and saves every chunk; it returns the blob IDs and
// the number of bytes read.
func (a *Archiver) saveChunks(ctx context.Context, ch *chunker.Chunker, rd io.Reader) ([]ID, int64, error) {
	ch.Reset(rd)
	var ids []ID
	var pending []chan saveResult
	var total int64
	collect := func(c chan saveResult) error {
		r := <-c
		if r.err != nil {
			return fatalError{r.err}
		}
		ids = append(ids, r.id)
		return nil
	}
	var firstErr error
	for {
		chunk, err := ch.Next(a.bufs.Get(0))
		if err == io.EOF {
			a.bufs.Put(chunk)
			break
		}
		if err != nil {
			a.bufs.Put(chunk)
			firstErr = err
			break
		}
		total += int64(len(chunk))
		a.Stats.BytesRead.Add(int64(len(chunk)))
		res := make(chan saveResult, 1)
		select {
		case a.saveQueue <- saveJob{ctx: ctx, typ: pack.DataBlob, buf: chunk, res: res, size: len(chunk)}:
		case <-ctx.Done():
			a.bufs.Put(chunk)
			firstErr = ctx.Err()
		}
		if firstErr != nil {
			break
		}
		pending = append(pending, res)
		// Keep a bounded number of chunks of this file in flight.
		for len(pending) > a.opts.Savers {
			if err := collect(pending[0]); err != nil && firstErr == nil {
				firstErr = err
			}
			pending = pending[1:]
		}
	}
	for _, c := range pending {
		if err := collect(c); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return ids, total, firstErr
}

func (a *Archiver) readFile(ctx context.Context, f vfs.File, path string, node *tree.Node) error {
	name := path
	a.Stats.CurrentFile.Store(&name)
	if node.Size < uint64(a.opts.Chunker.Min) {
		// Small enough to be one chunk whatever its content: hash, compress
		// and seal it right here instead of handing it to a saver.
		return a.readSmallFile(ctx, f, path, node)
	}
	return a.readLargeFile(ctx, f, path, node)
}

// readLargeFile chunks a file from its start (where f must be) with a
// shared chunker and records its blobs and size in node. The holes of a
// sparse file are not read (holeReader).
func (a *Archiver) readLargeFile(ctx context.Context, f vfs.File, path string, node *tree.Node) error {
	ch, release, err := a.bigFileSlot(ctx)
	if err != nil {
		return err
	}
	defer release()
	rd := newHoleReader(f, int64(node.Size))
	ids, n, err := a.saveChunks(ctx, ch, rd)
	a.Stats.HoleBytes.Add(rd.holes)
	if err != nil {
		if isFatal(err) {
			return err
		}
		return fmt.Errorf("read %s: %w", path, err)
	}
	a.Stats.FilesRead.Add(1)
	node.Content = ids
	node.Size = uint64(n)
	return nil
}

// bigFileSlot hands out one of the few chunkers that files larger than Min
// share: the savers, not the chunker, bound the speed of large files, and
// each chunker holds up to 2*Max bytes of buffer.
func (a *Archiver) bigFileSlot(ctx context.Context) (*chunker.Chunker, func(), error) {
	select {
	case a.bigSem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	a.bigMu.Lock()
	ch := a.bigChunkers[len(a.bigChunkers)-1]
	a.bigChunkers = a.bigChunkers[:len(a.bigChunkers)-1]
	a.bigMu.Unlock()
	return ch, func() {
		// Past a few MiB the buffer only pays for itself while a big file
		// streams through; idle, it would sit under the memory limit.
		ch.Shrink(4 << 20)
		a.bigMu.Lock()
		a.bigChunkers = append(a.bigChunkers, ch)
		a.bigMu.Unlock()
		<-a.bigSem
	}, nil
}

func (a *Archiver) readSmallFile(ctx context.Context, f vfs.File, path string, node *tree.Node) error {
	// Read up to Min bytes: the file may have grown since lstat; anything
	// beyond goes through the chunker like any larger file.
	limit := a.opts.Chunker.Min
	buf := a.bufs.Get(limit)[:limit]
	defer a.bufs.Put(buf)
	n, err := io.ReadFull(f, buf)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	default:
		// Exactly Min bytes or more: chunk it from the start.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		return a.readLargeFile(ctx, f, path, node)
	}
	data := buf[:n]
	a.Stats.BytesRead.Add(int64(n))
	node.Size = uint64(n)
	node.Content = nil
	if n > 0 {
		id, added, err := a.repo.SaveBlobWithID(ctx, pack.DataBlob, a.repo.Hash(data), data)
		if err != nil {
			return fatalError{err}
		}
		if added {
			a.Stats.BlobsAdded.Add(1)
			a.Stats.BytesAdded.Add(int64(n))
			a.sinceCheckpoint.Add(int64(n))
		}
		node.Content = []ID{id}
	}
	a.Stats.FilesRead.Add(1)
	return nil
}

// SaveStream stores the content of rd as one blob list, for stdin and
// command-output backups.
func (a *Archiver) SaveStream(ctx context.Context, rd io.Reader) ([]ID, int64, error) {
	stop := a.start(ctx)
	defer stop()
	return a.SaveReader(ctx, rd)
}

// StartStreams starts the savers for SaveReader; stop waits for them. It
// must not overlap with Snapshot or SaveStream.
func (a *Archiver) StartStreams(ctx context.Context) (stop func()) {
	return a.start(ctx)
}

// SaveReader stores the content of rd as one blob list. Between
// StartStreams and its stop any number of goroutines may call it, each
// with its own chunker; the savers are shared.
func (a *Archiver) SaveReader(ctx context.Context, rd io.Reader) ([]ID, int64, error) {
	ch := chunker.New(nil, a.opts.Chunker)
	return a.saveChunks(ctx, ch, rd)
}

// SaveTree stores a tree blob.
func (a *Archiver) SaveTree(ctx context.Context, t *tree.Tree) (ID, error) {
	var saveErr error
	id, err := tree.Save(t, func(b []byte) (ID, error) {
		id, _, err := a.repo.SaveBlobWithID(ctx, pack.TreeBlob, a.repo.Hash(b), b)
		if err != nil {
			saveErr = fatalError{err}
		}
		return id, saveErr
	})
	if saveErr != nil {
		return ID{}, saveErr
	}
	return id, err
}

func (a *Archiver) loadTree(ctx context.Context, id *ID) *tree.Tree {
	if id == nil || id.IsZero() {
		return nil
	}
	t, err := walker.LoadTree(ctx, a.repo, *id)
	if err != nil {
		return nil // the parent is only an optimisation
	}
	return t
}

// Snapshot backs up the given absolute paths and returns the root tree.
func (a *Archiver) Snapshot(ctx context.Context, paths []string) (ID, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	targets, err := normalizePaths(paths)
	if err != nil {
		return ID{}, err
	}
	stop := a.start(ctx)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	cpDone := make(chan struct{})
	cpErr := make(chan error, 1)
	go a.checkpointer(ctx, cpDone, cpErr)

	var parentRoot *tree.Tree
	if !a.opts.Parent.IsZero() {
		p := a.opts.Parent
		parentRoot = a.loadTree(ctx, &p)
	}
	root := buildVirtual(targets)
	rootFuture := a.archiveVirtual(ctx, root, parentRoot)
	<-rootFuture.done
	close(cpDone)
	stop()
	stopped = true
	if err := <-cpErr; err != nil {
		return ID{}, err
	}
	if rootFuture.err != nil {
		return ID{}, rootFuture.err
	}
	if err := a.fatal(); err != nil {
		return ID{}, err
	}
	if err := ctx.Err(); err != nil {
		return ID{}, err
	}
	return *rootFuture.node.Subtree, nil
}

func (a *Archiver) checkpointer(ctx context.Context, done chan struct{}, errc chan error) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-done:
			errc <- nil
			return
		case <-ctx.Done():
			errc <- nil
			return
		case <-t.C:
			if a.sinceCheckpoint.Load() < a.opts.CheckpointBytes && time.Since(last) < a.opts.CheckpointInterval {
				continue
			}
			a.sinceCheckpoint.Store(0)
			last = time.Now()
			if err := a.repo.Flush(ctx); err != nil {
				a.setFatal(fmt.Errorf("checkpoint: %w", err))
				errc <- err
				return
			}
		}
	}
}

// virtual is a node of the tree of path components leading to the targets.
type virtual struct {
	name     string
	path     string // absolute path of this component
	target   bool   // back up this path entirely
	children map[string]*virtual
}

func normalizePaths(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		out = append(out, filepath.Clean(abs))
	}
	sort.Strings(out)
	// Drop paths inside another target.
	var kept []string
	for _, p := range out {
		if len(kept) > 0 {
			last := kept[len(kept)-1]
			if p == last || strings.HasPrefix(p, strings.TrimSuffix(last, string(filepath.Separator))+string(filepath.Separator)) {
				continue
			}
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return nil, errors.New("no paths to back up")
	}
	return kept, nil
}

// components splits an absolute path into names below the root; a Windows
// volume name becomes the first component ("C:" -> "C").
func components(p string) []string {
	vol := filepath.VolumeName(p)
	rest := strings.TrimPrefix(p[len(vol):], string(filepath.Separator))
	var parts []string
	if vol != "" {
		parts = append(parts, strings.TrimSuffix(strings.TrimPrefix(vol, `\\`), ":"))
	}
	if rest != "" {
		parts = append(parts, strings.Split(rest, string(filepath.Separator))...)
	}
	return parts
}

func buildVirtual(targets []string) *virtual {
	root := &virtual{path: string(filepath.Separator), children: map[string]*virtual{}}
	for _, t := range targets {
		cur := root
		parts := components(t)
		if len(parts) == 0 { // backing up "/"
			root.target = true
			continue
		}
		for i, name := range parts {
			next := cur.children[name]
			if next == nil {
				next = &virtual{name: name, path: filepath.Join(cur.path, name), children: map[string]*virtual{}}
				if i == 0 && filepath.VolumeName(t) != "" {
					next.path = filepath.VolumeName(t) + string(filepath.Separator)
				}
				cur.children[name] = next
			}
			cur = next
		}
		cur.target = true
	}
	return root
}

// archiveVirtual archives an intermediate component: its metadata comes
// from the real directory, its children are only the components leading
// to targets.
func (a *Archiver) archiveVirtual(ctx context.Context, v *virtual, parent *tree.Tree) *future {
	if v.target { // backing up "/" itself
		return a.archivePathTarget(ctx, v.path, parent)
	}
	node, err := a.fs.Node(v.path, !a.opts.NoXattrs)
	if err != nil {
		node = &tree.Node{Type: tree.TypeDir, Mode: uint32(fs.ModeDir | 0o755), ModTime: time.Now()}
	}
	if !a.opts.WithAtime {
		node.AccessTime = time.Time{}
	}
	node.Name = tree.RawString(v.name)
	if v.name == "" {
		node.Name = "/"
	}
	names := make([]string, 0, len(v.children))
	for n := range v.children {
		names = append(names, n)
	}
	slices.Sort(names)
	var kids []*future
	for _, n := range names {
		if v.children[n].target {
			// Targets look themselves up in the tree that contains them.
			kids = append(kids, a.archivePathTarget(ctx, v.children[n].path, parent))
			continue
		}
		var pt *tree.Tree
		if parent != nil {
			if pn := parent.Find(n); pn != nil && pn.Type == tree.TypeDir {
				pt = a.loadTree(ctx, pn.Subtree)
			}
		}
		kids = append(kids, a.archiveVirtual(ctx, v.children[n], pt))
	}
	return a.finishDir(ctx, node, kids, v.path)
}

// archivePathTarget archives one target path given on the command line.
func (a *Archiver) archivePathTarget(ctx context.Context, path string, parentTree *tree.Tree) *future {
	if _, err := a.fs.Node(path, false); err != nil {
		if e := a.sourceError(path, err); e != nil {
			return failed(e)
		}
		return resolved(nil)
	}
	name := filepath.Base(path)
	if path == string(filepath.Separator) || filepath.VolumeName(path)+string(filepath.Separator) == path {
		// Backing up "/" itself: the root tree is the content.
		dir, err := a.fs.OpenDir(path)
		if err != nil {
			if e := a.sourceError(path, err); e != nil {
				return failed(e)
			}
			return resolved(nil)
		}
		node, err := a.fs.Node(path, !a.opts.NoXattrs)
		if err != nil {
			dir.Close()
			return failed(err)
		}
		if !a.opts.WithAtime {
			node.AccessTime = time.Time{}
		}
		node.Name = "/"
		return a.archiveDir(ctx, dir, path, node, parentTree, nil)
	}
	parentDir, err := a.fs.OpenDir(filepath.Dir(path))
	if err != nil {
		if e := a.sourceError(path, err); e != nil {
			return failed(e)
		}
		return resolved(nil)
	}
	defer parentDir.Close()
	var pn *tree.Node
	if parentTree != nil {
		pn = parentTree.Find(name)
	}
	return a.archiveEntry(ctx, parentDir, path, name, pn, 0, true)
}

// failed is a future that is already done with a fatal error.
func failed(err error) *future {
	f := resolved(nil)
	f.err = err
	return f
}

// archiveEntry archives the entry name of the open directory dir.
func (a *Archiver) archiveEntry(ctx context.Context, dir vfs.Dir, path, name string, parentNode *tree.Node, parentDev uint64, isTarget bool) *future {
	if err := ctx.Err(); err != nil {
		return failed(err)
	}
	// Files and directories get their xattrs below, through the file
	// descriptor the archiver opens anyway (or from the parent snapshot
	// when the file is unchanged): far cheaper than by name.
	node, err := dir.Node(name, false)
	if err != nil {
		if e := a.sourceError(path, err); e != nil {
			return failed(e)
		}
		return resolved(nil)
	}
	if !a.opts.WithAtime {
		node.AccessTime = time.Time{}
	}
	if a.opts.Excluder != nil && !isTarget && a.opts.Excluder.Excluded(path, node.Type == tree.TypeDir) {
		return resolved(nil)
	}
	if !a.opts.NoXattrs && node.Type != tree.TypeFile && node.Type != tree.TypeDir {
		xs, err := dir.XattrsAt(name)
		if e := a.setXattrs(node, path, xs, err); e != nil {
			return failed(e)
		}
	}
	switch node.Type {
	case tree.TypeFile:
		a.Stats.Files.Add(1)
		a.Stats.TotalBytes.Add(int64(node.Size))
		if a.reuse(node, parentNode) {
			// Setting an xattr changes the ctime, which reuse compared.
			if !a.opts.NoXattrs {
				node.Xattrs = parentNode.Xattrs
			}
			a.Stats.FilesUnchanged.Add(1)
			a.onFile(path, FileUnchanged)
			return resolved(node)
		}
		if parentNode == nil {
			a.Stats.FilesNew.Add(1)
			a.onFile(path, FileNew)
		} else {
			a.Stats.FilesChanged.Add(1)
			a.onFile(path, FileModified)
		}
		f, err := dir.OpenFile(name)
		if err != nil {
			if e := a.sourceError(path, err); e != nil {
				return failed(e)
			}
			return resolved(nil)
		}
		if e := a.fileXattrs(f, path, node); e != nil {
			f.Close()
			return failed(e)
		}
		vfs.Prefetch(f, min(int64(node.Size), prefetchBytes))
		fut := &future{done: make(chan struct{})}
		select {
		case a.fileQueue <- fileJob{ctx: ctx, f: f, path: path, node: node, result: fut}:
		case <-ctx.Done():
			f.Close()
			return failed(ctx.Err())
		}
		return fut
	case tree.TypeDir:
		a.Stats.Dirs.Add(1)
		if a.opts.OneFileSystem && !isTarget && parentDev != 0 && node.DeviceID != parentDev {
			// A mount point: keep the directory, not what is mounted there.
			empty := &tree.Tree{}
			id, err := a.SaveTree(ctx, empty)
			if err != nil {
				return failed(err)
			}
			node.Subtree = &id
			return resolved(node)
		}
		sub, err := dir.OpenDir(name)
		if err != nil {
			node.Error = err.Error()
			if e := a.sourceError(path, err); e != nil {
				return failed(e)
			}
			id, err := a.SaveTree(ctx, &tree.Tree{})
			if err != nil {
				return failed(err)
			}
			node.Subtree = &id
			return resolved(node)
		}
		if e := a.fileXattrs(sub, path, node); e != nil {
			sub.Close()
			return failed(e)
		}
		var keep func(string) bool
		if od := vfs.OSFile(sub); a.opts.Excluder != nil && od != nil {
			if ex, err := a.opts.Excluder.ExcludedByMarkerAt(od); err == nil && ex {
				// Like restic: keep the directory and its marker file,
				// leave out everything else in it.
				keep = a.opts.Excluder.IsMarkerName
			}
		}
		return a.walkDir(ctx, func() *future {
			var pt *tree.Tree
			if parentNode != nil && parentNode.Type == tree.TypeDir {
				pt = a.loadTree(ctx, parentNode.Subtree)
			}
			return a.archiveDir(ctx, sub, path, node, pt, keep)
		})
	default:
		a.Stats.Others.Add(1)
		return resolved(node)
	}
}

// walkDir runs scan, the scan of an opened directory (its parent's tree
// loaded, its entries examined, its files queued for the readers), in a
// goroutine of its own when fewer than extraWalkers scans run so, else in
// this one. On a cold cache, loading trees, listing directories and
// statting entries each wait on the store or the disk; several in flight
// keep them busy, as the readers' prefetch does for file data. The
// snapshot does not depend on the order: a directory's tree is built from
// its children's futures in name order.
func (a *Archiver) walkDir(ctx context.Context, scan func() *future) *future {
	select {
	case a.walkSem <- struct{}{}:
	default:
		return scan()
	}
	fut := &future{done: make(chan struct{})}
	go func() {
		inner := scan()
		<-a.walkSem // the scan is done; its subtree finishes on its own
		<-inner.done
		fut.node, fut.err = inner.node, inner.err
		close(fut.done)
	}()
	return fut
}

// extraWalkers bounds the directory scans that run besides the main walk
// (walkDir), and so the directories open at once beyond those on the
// main walk's path.
const extraWalkers = 4

// fileXattrs reads the xattrs of an opened file or directory into node.
func (a *Archiver) fileXattrs(f interface{ Xattrs() ([]tree.Xattr, error) }, path string, node *tree.Node) error {
	if a.opts.NoXattrs {
		return nil
	}
	xs, err := f.Xattrs()
	return a.setXattrs(node, path, xs, err)
}

// setXattrs records the xattrs read for node. A failure to read them keeps
// the entry: it is noted on the node and counted as a source error, whose
// result (non-nil only when the backup must stop) is returned.
func (a *Archiver) setXattrs(node *tree.Node, path string, xs []tree.Xattr, err error) error {
	node.Xattrs = xs
	if err == nil {
		return nil
	}
	node.Error = err.Error()
	return a.sourceError(path, err)
}

// reuse fills node.Content from the parent snapshot if the file is
// unchanged and every blob is still usable.
func (a *Archiver) reuse(node, parent *tree.Node) bool {
	if parent == nil || parent.Type != tree.TypeFile || parent.Size != node.Size ||
		!parent.ModTime.Equal(node.ModTime) || !parent.ChangeTime.Equal(node.ChangeTime) ||
		(parent.Inode != 0 && node.Inode != 0 && parent.Inode != node.Inode) || parent.Error != "" {
		return false
	}
	for _, id := range parent.Content {
		if !a.repo.NoteReuse(id, pack.DataBlob) {
			return false
		}
	}
	node.Content = slices.Clone(parent.Content)
	return true
}

// archiveDir lists an open directory (and closes it) and archives its
// entries; the returned future completes when its tree blob is saved.
func (a *Archiver) archiveDir(ctx context.Context, dir vfs.Dir, path string, node *tree.Node, parentTree *tree.Tree, keep func(string) bool) *future {
	names, err := dir.Names(-1)
	if err != nil {
		node.Error = err.Error()
		if e := a.sourceError(path, err); e != nil {
			dir.Close()
			return failed(e)
		}
	}
	slices.Sort(names)
	kids := make([]*future, 0, len(names))
	for _, name := range names {
		if keep != nil && !keep(name) {
			continue
		}
		var pn *tree.Node
		if parentTree != nil {
			pn = parentTree.Find(name)
		}
		child := filepath.Join(path, name)
		kids = append(kids, a.archiveEntry(ctx, dir, child, name, pn, node.DeviceID, false))
		if a.fatal() != nil {
			break
		}
	}
	dir.Close()
	return a.finishDir(ctx, node, kids, path)
}

// finishDir waits (in a goroutine) for the children, then saves the tree.
func (a *Archiver) finishDir(ctx context.Context, node *tree.Node, kids []*future, path string) *future {
	fut := &future{done: make(chan struct{})}
	go func() {
		defer close(fut.done)
		t := &tree.Tree{Nodes: make([]*tree.Node, 0, len(kids))}
		for _, k := range kids {
			<-k.done
			if k.err != nil {
				if fut.err == nil {
					fut.err = k.err
				}
				continue
			}
			if k.node != nil {
				t.Nodes = append(t.Nodes, k.node)
			}
		}
		if fut.err != nil {
			a.setFatal(fut.err)
			return
		}
		t.Sort()
		id, err := a.SaveTree(ctx, t)
		if err != nil {
			fut.err = err
			a.setFatal(err)
			return
		}
		node.Subtree = &id
		fut.node = node
	}()
	return fut
}
