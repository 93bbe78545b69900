package restorer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/vfs"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/bunkerbackup/bunker/internal/fsmeta"
)

// ID of a blob.
type ID = tree.ID

// Repo is what the restorer needs of a repository.
type Repo interface {
	LoadBlob(ctx context.Context, t pack.BlobType, id ID, buf []byte) ([]byte, error)
	Hash(data []byte) ID
	// BlobLength returns the plaintext length of a blob, if known; it
	// lets large files be written by several workers at once.
	BlobLength(id ID, t pack.BlobType) (int, bool)
}

// partBlobs is how many blobs one worker writes of a large file before
// another worker takes the next part (about 16 MiB at default sizes).
const partBlobs = 16

// Overwrite policies for entries that already exist in the target.
const (
	OverwriteAlways    = "always"
	OverwriteIfChanged = "if-changed"
	// OverwriteIfDifferent leaves a file whose content is the
	// snapshot's (every chunk read and compared with its blob ID) and
	// only gives it the snapshot's metadata: a delta restore.
	OverwriteIfDifferent = "if-different"
	OverwriteNever       = "never"
)

// Options configure a restore.
type Options struct {
	// Select decides for a snapshot path whether to restore the entry
	// (selected) and, for directories, whether to look inside (descend).
	// Nil selects everything.
	Select    func(snapPath string, isDir bool) (selected, descend bool)
	Overwrite string // default always
	// Delete removes entries of restored directories that the snapshot
	// does not have.
	Delete bool
	// Workers is how many files are written at once (default 4).
	Workers int
	// NoOwner skips chown even as root; NoXattrs skips xattrs.
	NoOwner, NoXattrs bool
	// OnError is called for a problem with one entry; nil return goes on.
	OnError func(path string, err error) error
	// Sync fsyncs every file written.
	Sync bool
	// Verify reads every written file back and compares it with the
	// snapshot's blob IDs; mismatches are listed by VerifyFailures.
	Verify bool
	// Readahead reads the blobs a restore needs in few large reads of
	// packs instead of one read per blob (when the repository is a
	// PackReader): for stores where every request costs.
	Readahead bool
	// SpillDir is where read-ahead keeps, in a private temporary file
	// (unnamed or unlinked, mode 0600), the blobs that later files still
	// need once they leave its memory (shared content), so that nothing
	// is downloaded twice. Default the temporary directory; a directory
	// inside the restore target is never used.
	SpillDir string
	// Warn, if set, is told once when the spill file cannot be made or
	// written: shared blobs are then read from the repository again.
	Warn func(msg string)
	// FS is the filesystem restored into (default the real one,
	// vfs.NewOS()). Whatever it is, entries are made only through its
	// directory handles, one name component at a time.
	FS vfs.FS
}

// Stats are live counters.
type Stats struct {
	FilesTotal, BytesTotal     atomic.Int64
	FilesDone, BytesDone       atomic.Int64
	FilesSkipped, BytesSkipped atomic.Int64
	Dirs, Others, Links        atomic.Int64
	Errors, Deleted            atomic.Int64
}

// Restorer restores one tree.
type Restorer struct {
	repo Repo
	opts Options
	fs   vfs.FS
	meta vfs.Meta
	ra   *readahead
	// limits are read-ahead's memory bounds (ready, kept): the defaults,
	// lowered by tests.
	limits [2]int64
	zeros  zeroBlobs
	Stats  Stats

	jobs chan fileJob

	mu         sync.Mutex
	first      firstError
	hardlinks  map[[2]uint64]*hardlink // (device, inode) -> first restored link
	haveTotals bool
	verifyBad  []string
	written    int
}

// hardlink is the first restored name of an inode. Its directory is held
// open (a pending reference) until the restore ends, so later links can
// be made with LinkAt at any depth. Later links are made only once the
// first file is complete (until then they wait, their directories held
// open too), so no name shows a file being written.
type hardlink struct {
	d    *dirState
	name string
	path string

	// Guarded by Restorer.mu.
	finished bool
	err      error      // of the first file, when finished
	waiting  []linkWait // later links to make when finished
}

// linkWait is a later name of a hard-linked file still being written.
type linkWait struct {
	d    *dirState
	name string
	path string
}

// PartialName is the name under which a file is written in its
// directory until it is complete (and verified, with Options.Verify):
// only then is it renamed to name. A file that fails to restore is
// removed; one whose content fails verification, or whose restore was
// interrupted, stays under this name, never under its real one.
func PartialName(name string) string {
	const suffix = ".bunker-partial"
	if p := "." + name + suffix; len(p) <= 255 {
		return p
	}
	h := sha256.Sum256([]byte(name))
	return ".bunker-" + hex.EncodeToString(h[:16]) + suffix
}

// New returns a restorer.
func New(repo Repo, opts Options) *Restorer {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Overwrite == "" {
		opts.Overwrite = OverwriteAlways
	}
	fsys := opts.FS
	if fsys == nil {
		fsys = vfs.NewOS()
	}
	m := vfs.Meta{Owner: !opts.NoOwner, Xattrs: !opts.NoXattrs}
	r := &Restorer{repo: repo, opts: opts, fs: fsys, meta: m, hardlinks: map[[2]uint64]*hardlink{}, limits: [2]int64{maxReady, maxKept}}
	return r
}

func (r *Restorer) entryError(p string, err error) error {
	r.Stats.Errors.Add(1)
	if r.opts.OnError != nil {
		return r.opts.OnError(p, err)
	}
	return err
}

func (r *Restorer) setErr(err error) { r.first.set(err) }

func (r *Restorer) err() error { return r.first.get() }

// firstError keeps the first error reported by any goroutine.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (e *firstError) set(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

func (e *firstError) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// dirState is a target directory being filled. Its metadata is applied
// when the walker has listed it and every entry inside is done.
type dirState struct {
	r       *Restorer
	parent  *dirState
	name    string     // in parent
	path    string     // target path, for messages and path-based calls
	node    *tree.Node // nil for the target root
	fd      vfs.Dir    // nil until created
	fresh   bool       // created by this restore: no entry can pre-exist
	pending int        // entries in flight + 1 while listing
	mu      sync.Mutex
}

// list reads up to n names of the directory through a fresh handle (d.fd
// serves *At calls; its read position must not matter).
func (d *dirState) list(n int) ([]string, error) {
	var f vfs.Dir
	var err error
	if d.parent == nil {
		f, err = d.r.fs.OpenDir(d.path)
	} else {
		f, err = d.parent.fd.OpenDir(d.name)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Names(n)
}

// ensure creates the directory (and its parents) if not yet done.
func (d *dirState) ensure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd != nil {
		return nil
	}
	if d.parent == nil {
		return errors.New("target root not open")
	}
	if err := d.parent.ensure(); err != nil {
		return err
	}
	d.parent.addPending()
	existed := false
	if !d.parent.fresh {
		var err error
		if existed, err = d.r.prepare(d.parent, d.name, d.path, d.node); err != nil {
			d.parent.done()
			return err
		}
	}
	d.fresh = !existed
	if err := d.parent.fd.Create(d.name, d.node); err != nil {
		d.parent.done()
		return err
	}
	fd, err := d.parent.fd.OpenDir(d.name)
	if err != nil {
		d.parent.done()
		return err
	}
	d.fd = fd
	d.pending++ // released by finishListing
	return nil
}

func (d *dirState) addPending() {
	d.mu.Lock()
	d.pending++
	d.mu.Unlock()
}

// done marks one entry inside d finished; the last one applies d's
// metadata and releases d from its parent.
func (d *dirState) done() {
	d.mu.Lock()
	d.pending--
	last := d.pending == 0 && d.fd != nil
	d.mu.Unlock()
	if !last {
		return
	}
	if d.parent != nil {
		if err := d.parent.fd.Apply(d.name, d.node, d.r.meta); err != nil {
			if e := d.r.entryError(d.path, err); e != nil {
				d.r.setErr(e)
			}
		}
		d.fd.Close()
		d.parent.done()
	}
}

// fileState is one regular file being restored, possibly by several
// workers writing disjoint parts.
type fileState struct {
	dir  *dirState
	name string
	path string
	node *tree.Node

	create sync.Once
	w      vfs.Writer // of the partial file, set by the first part
	hl     *hardlink  // when this is the first name of hard links
	first  firstError // of any part
	mu     sync.Mutex
	lens   []int        // plaintext length of every blob, for verify
	parts  atomic.Int32 // parts not yet done
	bytes  atomic.Int64 // bytes written
}

func (f *fileState) fail(err error) { f.first.set(err) }

func (f *fileState) failed() error { return f.first.get() }

// fileJob is one part of a file: blobs [first, end) written from offset off.
type fileJob struct {
	ctx        context.Context
	f          *fileState
	first, end int
	off        int64
}

// SetTotals gives the size of what will be restored (from the snapshot's
// summary), sparing the extra pass over the trees that counts it.
func (r *Restorer) SetTotals(files, bytes int64) {
	r.Stats.FilesTotal.Store(files)
	r.Stats.BytesTotal.Store(bytes)
	r.haveTotals = true
}

// Restore writes the node (a directory's contents, or a single file) into
// target. For a directory, target becomes that directory.
func (r *Restorer) Restore(ctx context.Context, rootTree ID, snapPath string, target string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if pr, ok := r.repo.(PackReader); ok && r.opts.Readahead {
		r.ra = newReadahead(pr, r.repo.Hash, r.opts.SpillDir, target, r.opts.Workers, r.opts.Warn)
		r.ra.maxReady, r.ra.maxKept = r.limits[0], r.limits[1]
		defer func() {
			// The spill file holds nothing the restore still needs.
			_ = r.ra.close()
		}()
	}
	node, err := r.findNode(ctx, rootTree, snapPath)
	if err != nil {
		return err
	}
	if node.Type != tree.TypeDir {
		// A single entry: restore it into target as a directory.
		node = &tree.Node{Type: tree.TypeDir, Name: "", Mode: uint32(fs.ModeDir | 0o755), Subtree: nil}
		singleParent, _ := path.Split(path.Clean("/" + snapPath))
		t, err := r.loadTreeAt(ctx, rootTree, singleParent)
		if err != nil {
			return err
		}
		one := t.Find(path.Base(path.Clean("/" + snapPath)))
		r.prescan(ctx, &tree.Tree{Nodes: []*tree.Node{one}}, singleParent)
		if r.ra != nil {
			r.ra.build()
		}
		return r.run(ctx, target, func(root *dirState) error {
			return r.restoreNodes(ctx, root, []*tree.Node{one}, singleParent, true)
		})
	}
	t, err := r.loadTree(ctx, *node.Subtree)
	if err != nil {
		return err
	}
	base := path.Clean("/" + snapPath)
	if !r.haveTotals || r.ra != nil {
		r.prescan(ctx, t, base)
	}
	if r.ra != nil {
		r.ra.build()
	}
	return r.run(ctx, target, func(root *dirState) error {
		if base != "/" {
			// A directory of the snapshot: the target takes its metadata.
			// The snapshot root has none; the target keeps its own then.
			root.node = node
		}
		return r.restoreNodes(ctx, root, t.Nodes, base, false)
	})
}

func (r *Restorer) run(ctx context.Context, target string, walk func(root *dirState) error) error {
	if err := r.fs.MkdirAll(target); err != nil {
		return fmt.Errorf("create target: %w", err)
	}
	fd, err := r.fs.OpenDir(target)
	if err != nil {
		return fmt.Errorf("open target: %w", err)
	}
	root := &dirState{r: r, path: target, fd: fd, pending: 1}
	if names, err := root.list(1); err == io.EOF || (err == nil && len(names) == 0) {
		root.fresh = true
	}
	r.jobs = make(chan fileJob, r.opts.Workers*2)
	var wg sync.WaitGroup
	for i := 0; i < r.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for j := range r.jobs {
				buf = r.writeFile(j, buf)
			}
		}()
	}
	werr := walk(root)
	close(r.jobs)
	wg.Wait()
	for _, hl := range r.hardlinks {
		hl.d.done()
	}
	// Apply the root's metadata last (when it came from the snapshot).
	if root.node != nil && werr == nil && r.err() == nil {
		if err := r.fs.Apply(target, root.node, r.meta); err != nil {
			if e := r.entryError(target, err); e != nil {
				r.setErr(e)
			}
		}
	}
	fd.Close()
	if werr != nil {
		return werr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return r.err()
}

func (r *Restorer) writeFile(j fileJob, buf []byte) []byte {
	f := j.f
	f.create.Do(func() {
		if f.w != nil {
			return
		}
		partial := PartialName(f.name)
		if !f.dir.fresh {
			// A leftover of an earlier interrupted restore.
			if err := f.dir.fd.RemoveAll(partial); err != nil {
				f.fail(err)
				return
			}
		}
		w, err := f.dir.fd.CreateFile(partial, int64(f.node.Size))
		if err != nil {
			f.fail(err)
			return
		}
		f.w = w
	})
	if f.failed() == nil && r.err() == nil && j.ctx.Err() == nil {
		off := j.off
		for i := j.first; i < j.end; i++ {
			id := f.node.Content[i]
			n, zero := r.zeros.length(id)
			var err error
			if !zero {
				buf, err = r.loadBlob(j.ctx, id, buf)
				n = len(buf)
			}
			if err == nil && off+int64(n) > int64(f.node.Size) {
				err = fmt.Errorf("content is longer than the recorded size %d", f.node.Size)
			}
			// A blob known to be all zeros is neither loaded nor written:
			// the range stays a hole of the new file (vfs.Writer).
			if err == nil && !zero {
				_, err = f.w.WriteAt(buf, off)
				if err == nil && fsmeta.IsZero(buf) {
					r.learnZero(id, n)
				}
			}
			if err != nil {
				f.fail(err)
				break
			}
			f.mu.Lock()
			f.lens[i] = n
			f.mu.Unlock()
			off += int64(n)
			f.bytes.Add(int64(n))
			r.Stats.BytesDone.Add(int64(n))
		}
	}
	if f.parts.Add(-1) == 0 {
		buf = r.finishFile(j.ctx, f, buf)
	}
	return buf
}

// maxZeroBlobs bounds the all-zero blobs a restore remembers.
const maxZeroBlobs = 1024

// zeroBlobs are the data blobs a restore has found to be all zeros, with
// their lengths. The holes of sparse files (VM images, database files)
// are chunks of zeros of few lengths, each stored once and referenced
// thousands of times: once one has been loaded (and its plaintext checked
// against its ID), its later uses need neither loading, decompressing
// and hashing it again nor writing it.
type zeroBlobs struct {
	mu  sync.RWMutex
	ids map[ID]int
}

// length returns the length of id if it is a known all-zero blob.
func (z *zeroBlobs) length(id ID) (int, bool) {
	z.mu.RLock()
	n, ok := z.ids[id]
	z.mu.RUnlock()
	return n, ok
}

// learnZero notes that blob id, just loaded, is n zero bytes.
func (r *Restorer) learnZero(id ID, n int) {
	z := &r.zeros
	z.mu.Lock()
	if z.ids == nil {
		z.ids = map[ID]int{}
	}
	_, known := z.ids[id]
	added := !known && len(z.ids) < maxZeroBlobs
	if added {
		z.ids[id] = n
	}
	z.mu.Unlock()
	if added && r.ra != nil {
		r.ra.forget(id)
	}
}

// loadBlob reads a data blob, through read-ahead when it is on.
func (r *Restorer) loadBlob(ctx context.Context, id ID, buf []byte) ([]byte, error) {
	if r.ra != nil {
		out, ok, err := r.ra.load(ctx, id, buf)
		if ok && (err == nil || ctx.Err() != nil) {
			return out, err
		}
		// Not read ahead, or that copy failed: LoadBlob tries every
		// indexed copy (a planted pack may hold a forged one).
	}
	return r.repo.LoadBlob(ctx, pack.DataBlob, id, buf)
}

// finishFile runs after the last part of a file: close, verify,
// metadata, then the rename from the partial name to the real one.
func (r *Restorer) finishFile(ctx context.Context, f *fileState, buf []byte) []byte {
	defer f.dir.done()
	err := f.failed()
	if err == nil && f.bytes.Load() != int64(f.node.Size) && r.err() == nil && ctx.Err() == nil {
		err = fmt.Errorf("content is %d bytes, the snapshot says %d", f.bytes.Load(), f.node.Size)
	}
	if f.w != nil {
		if err == nil && r.opts.Sync {
			err = f.w.Sync()
		}
		if cerr := f.w.Close(); err == nil {
			err = cerr
		}
	}
	partial := PartialName(f.name)
	if r.err() != nil || ctx.Err() != nil {
		// The restore is ending with an error: what was written stays
		// under the partial name.
		r.finishLinks(f, errors.New("the restore was interrupted"), false)
		return buf
	}
	if err == nil && r.opts.Verify {
		var ok bool
		ok, buf = r.verifyFile(f, partial, buf)
		if !ok {
			r.mu.Lock()
			r.verifyBad = append(r.verifyBad, f.path)
			r.mu.Unlock()
			r.finishLinks(f, fmt.Errorf("its content differs from the snapshot (left as %s)", partial), true)
			return buf
		}
	}
	var metaErr error
	if err == nil {
		metaErr = f.dir.fd.Apply(partial, f.node, r.meta)
		err = f.dir.fd.Rename(partial, f.dir.fd, f.name)
	}
	if err != nil {
		if f.w != nil {
			if rerr := f.dir.fd.RemoveAll(partial); rerr != nil {
				err = fmt.Errorf("%w (and removing the partial file: %v)", err, rerr)
			}
		}
		if e := r.entryError(f.path, fmt.Errorf("restore %s: %w", f.path, err)); e != nil {
			r.setErr(e)
		}
		r.finishLinks(f, err, true)
		return buf
	}
	r.finishLinks(f, nil, true)
	if metaErr != nil {
		if e := r.entryError(f.path, fmt.Errorf("restore %s: %w", f.path, metaErr)); e != nil {
			r.setErr(e)
		}
		return buf
	}
	r.Stats.FilesDone.Add(1)
	r.mu.Lock()
	r.written++
	r.mu.Unlock()
	return buf
}

// finishLinks makes the later names of a hard-linked file once its first
// name is finished; when it failed (err), they fail too, reported when
// report is set.
func (r *Restorer) finishLinks(f *fileState, err error, report bool) {
	hl := f.hl
	if hl == nil {
		return
	}
	r.mu.Lock()
	hl.finished, hl.err = true, err
	ws := hl.waiting
	hl.waiting = nil
	r.mu.Unlock()
	for _, w := range ws {
		r.makeLink(hl, w.d, w.name, w.path, report)
		w.d.done()
	}
}

// makeLink makes name in d a hard link to the finished first name hl.
func (r *Restorer) makeLink(hl *hardlink, d *dirState, name, tp string, report bool) {
	err := hl.err
	if err == nil {
		// Linked under the partial name and renamed over what is
		// there, so an older file stays whole until then.
		partial := PartialName(name)
		if err = d.fd.RemoveAll(partial); err == nil {
			err = hl.d.fd.Link(hl.name, d.fd, partial)
		}
		if err == nil {
			err = d.fd.Rename(partial, d.fd, name)
			// rename(2) does nothing when both names are already links
			// to one file; the partial name must go all the same.
			if rerr := d.fd.RemoveAll(partial); err == nil {
				err = rerr
			}
		}
	}
	if err == nil {
		r.Stats.Links.Add(1)
		r.Stats.FilesDone.Add(1)
		return
	}
	if !report {
		return
	}
	if e := r.entryError(tp, fmt.Errorf("restore %s: hard link to %s: %w", tp, hl.path, err)); e != nil {
		r.setErr(e)
	}
}

func (r *Restorer) loadTree(ctx context.Context, id ID) (*tree.Tree, error) {
	if r.ra != nil {
		if t := r.ra.takeTree(id); t != nil {
			return t, nil
		}
	}
	return walker.LoadTree(ctx, r.repo, id)
}

func (r *Restorer) loadTreeAt(ctx context.Context, root ID, p string) (*tree.Tree, error) {
	n, err := r.findNode(ctx, root, p)
	if err != nil {
		return nil, err
	}
	if n.Type != tree.TypeDir || n.Subtree == nil {
		return nil, fmt.Errorf("%s is not a directory in the snapshot", p)
	}
	return r.loadTree(ctx, *n.Subtree)
}

// findNode resolves a path inside the snapshot ("" or "/" is the root).
func (r *Restorer) findNode(ctx context.Context, root ID, p string) (*tree.Node, error) {
	return FindNode(ctx, r.repo, root, p)
}

// FindNode resolves a slash-separated path inside a snapshot tree. The root
// is returned as a directory node without a name.
func FindNode(ctx context.Context, repo Repo, root ID, p string) (*tree.Node, error) {
	id := root
	node := &tree.Node{Type: tree.TypeDir, Subtree: &id, Mode: uint32(fs.ModeDir | 0o755)}
	clean := path.Clean("/" + p)
	if clean == "/" {
		return node, nil
	}
	parts := splitPath(clean)
	cur := root
	for i, part := range parts {
		t, err := walker.LoadTree(ctx, repo, cur)
		if err != nil {
			return nil, err
		}
		n := t.Find(part)
		if n == nil {
			return nil, fmt.Errorf("path %q not found in snapshot", clean)
		}
		if i == len(parts)-1 {
			return n, nil
		}
		if n.Type != tree.TypeDir || n.Subtree == nil {
			return nil, fmt.Errorf("path %q: %s is not a directory", clean, "/"+path.Join(parts[:i+1]...))
		}
		cur = *n.Subtree
	}
	return node, nil
}

func splitPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, "/") {
		if part != "" {
			out = append(out, part)
		}
	}
	return out
}

// prescan counts what will be restored, for progress and ETA (unless the
// totals were given), and notes the blobs to read ahead.
func (r *Restorer) prescan(ctx context.Context, t *tree.Tree, base string) {
	var walk func(t *tree.Tree, p string, selected bool)
	walk = func(t *tree.Tree, p string, selected bool) {
		for _, n := range t.Nodes {
			if n == nil || ctx.Err() != nil {
				continue
			}
			np := path.Join(p, string(n.Name))
			sel, desc := r.selectNode(np, n.Type == tree.TypeDir, selected)
			if n.Type == tree.TypeFile && sel {
				if !r.haveTotals {
					r.Stats.FilesTotal.Add(1)
					r.Stats.BytesTotal.Add(int64(n.Size))
				}
				if r.ra != nil {
					for _, id := range n.Content {
						r.ra.need(id)
					}
				}
			}
			if n.Type == tree.TypeDir && desc && n.Subtree != nil {
				if st, err := walker.LoadTree(ctx, r.repo, *n.Subtree); err == nil {
					if r.ra != nil {
						r.ra.keepTree(*n.Subtree, st)
					}
					walk(st, np, sel)
				}
			}
		}
	}
	walk(t, base, false)
}

func (r *Restorer) selectNode(p string, isDir, parentSelected bool) (bool, bool) {
	if r.opts.Select == nil {
		return true, true
	}
	sel, desc := r.opts.Select(p, isDir)
	if parentSelected && !sel && !desc {
		return false, false // explicitly excluded
	}
	if parentSelected {
		return true, true
	}
	return sel, desc || sel
}

// restoreNodes restores the entries of one directory into d.
func (r *Restorer) restoreNodes(ctx context.Context, d *dirState, nodes []*tree.Node, base string, parentSelected bool) error {
	defer d.done() // the listing reference
	names := map[string]bool{}
	// A file is written under its partial name until it is complete; an
	// entry of the snapshot with that very name (only a hostile or odd
	// snapshot has one) would be swapped for it or renamed into its place.
	partials := map[string]string{}
	for _, n := range nodes {
		if n.Type == tree.TypeFile {
			partials[PartialName(string(n.Name))] = string(n.Name)
		}
	}
	for _, n := range nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.err(); err != nil {
			return err
		}
		name := string(n.Name)
		if err := tree.ValidName(name); err != nil {
			return fmt.Errorf("snapshot tree at %s: %w", base, err)
		}
		names[name] = true
		sp := path.Join(base, name)
		tp := filepath.Join(d.path, name)
		sel, desc := r.selectNode(sp, n.Type == tree.TypeDir, parentSelected)
		if file, ok := partials[name]; ok && (sel || desc) {
			err := fmt.Errorf("restore %s: not restored: its name is the partial name of %s, which is written there", tp, file)
			if e := r.entryError(tp, err); e != nil {
				return e
			}
			continue
		}
		if n.Type == tree.TypeDir {
			if !desc && !sel {
				continue
			}
			sub := &dirState{r: r, parent: d, name: name, path: tp, node: n}
			if sel {
				if err := sub.ensure(); err != nil {
					if e := r.entryError(tp, err); e != nil {
						return e
					}
					continue
				}
			}
			if n.Subtree == nil {
				continue
			}
			t, err := r.loadTree(ctx, *n.Subtree)
			if err != nil {
				if e := r.entryError(tp, err); e != nil {
					return e
				}
				continue
			}
			if sub.fd == nil {
				// Not created yet: it is created on demand by a selected
				// child; hold the listing reference meanwhile.
				sub.pending = 0
			}
			if err := r.restoreNodes(ctx, sub, t.Nodes, sp, sel); err != nil {
				return err
			}
			if sel {
				r.Stats.Dirs.Add(1)
			}
			continue
		}
		if !sel {
			continue
		}
		if err := d.ensure(); err != nil {
			if e := r.entryError(tp, err); e != nil {
				return e
			}
			continue
		}
		if err := r.restoreLeaf(ctx, d, name, tp, n); err != nil {
			return err
		}
	}
	if r.opts.Delete && d.fd != nil {
		r.deleteExtra(d, names)
	}
	return nil
}

// prepare handles an existing entry at the target per the overwrite
// policy. It returns errSkip to leave the entry alone.
func (r *Restorer) prepare(d *dirState, name, tp string, n *tree.Node) (existed bool, err error) {
	fi, err := d.fd.Lstat(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	if n.Type == tree.TypeDir && fi.IsDir() {
		return true, nil // merge into it
	}
	switch r.opts.Overwrite {
	case OverwriteNever:
		return true, errSkip
	case OverwriteIfChanged:
		if n.Type == tree.TypeFile && fi.Mode().IsRegular() && fi.Size() == int64(n.Size) && fi.ModTime().Equal(n.ModTime) {
			return true, errSkip
		}
	case OverwriteIfDifferent:
		// A file with another name elsewhere is rewritten, never kept: the
		// snapshot's metadata applied to it would change that other file
		// too (a link planted to a file outside the target).
		if n.Type == tree.TypeFile && fi.Mode().IsRegular() && vfs.Links(fi) == 1 && fi.Size() == int64(n.Size) && r.sameContent(d, name, n) {
			if err := d.fd.Apply(name, n, r.meta); err != nil {
				return true, fmt.Errorf("%s: %w", tp, err)
			}
			return true, errSkip
		}
	}
	if n.Type == tree.TypeFile && (fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0) {
		// The finished file is renamed over it: until then the old
		// one stays whole, and stays if the new one fails.
		return true, nil
	}
	if err := d.fd.RemoveAll(name); err != nil {
		return true, fmt.Errorf("replace %s: %w", tp, err)
	}
	return false, nil
}

var errSkip = errors.New("skipped: exists")

func (r *Restorer) restoreLeaf(ctx context.Context, d *dirState, name, tp string, n *tree.Node) error {
	fail := func(err error) error {
		if errors.Is(err, errSkip) {
			if n.Type == tree.TypeFile {
				r.Stats.FilesSkipped.Add(1)
				r.Stats.BytesSkipped.Add(int64(n.Size))
			}
			return nil
		}
		return r.entryError(tp, err)
	}
	if !d.fresh {
		if _, err := r.prepare(d, name, tp, n); err != nil {
			return fail(err)
		}
	}
	f := &fileState{dir: d, name: name, path: tp, node: n}
	if n.Type == tree.TypeFile && n.Links > 1 && n.Inode != 0 {
		key := [2]uint64{n.DeviceID, n.Inode}
		r.mu.Lock()
		first, seen := r.hardlinks[key]
		finished := seen && first.finished // read under the lock: finishLinks sets it
		if !seen {
			d.addPending() // keep d open for later links; released at the end
			f.hl = &hardlink{d: d, name: name, path: tp}
			r.hardlinks[key] = f.hl
		} else if !finished {
			// Linked when the first name is complete.
			d.addPending()
			first.waiting = append(first.waiting, linkWait{d: d, name: name, path: tp})
		}
		r.mu.Unlock()
		if seen {
			if finished {
				r.makeLink(first, d, name, tp, true)
			}
			return r.err()
		}
	}
	if n.Type != tree.TypeFile {
		if err := d.fd.Create(name, n); err != nil {
			return fail(err)
		}
		if n.Type != tree.TypeSocket {
			if err := d.fd.Apply(name, n, r.meta); err != nil {
				return fail(err)
			}
		}
		r.Stats.Others.Add(1)
		return nil
	}
	// Split large files into parts written by several workers; a part
	// needs its offset, known from the index's plaintext lengths.
	f.lens = make([]int, len(n.Content))
	type part struct {
		first, end int
		off        int64
	}
	parts := []part{{0, len(n.Content), 0}}
	if len(n.Content) > partBlobs {
		parts = parts[:0]
		var off int64
		ok := true
		for i := 0; i < len(n.Content) && ok; i += partBlobs {
			end := min(i+partBlobs, len(n.Content))
			parts = append(parts, part{i, end, off})
			for _, id := range n.Content[i:end] {
				l, known := r.repo.BlobLength(id, pack.DataBlob)
				if !known {
					ok = false
					break
				}
				off += int64(l)
			}
		}
		if !ok {
			parts = []part{{0, len(n.Content), 0}}
		}
	}
	f.parts.Store(int32(len(parts)))
	d.addPending()
	for _, p := range parts {
		select {
		case r.jobs <- fileJob{ctx: ctx, f: f, first: p.first, end: p.end, off: p.off}:
		case <-ctx.Done():
			// The workers finish what was queued; the file is left
			// incomplete and the restore fails with ctx.Err().
			for left := f.parts.Add(-1); left > 0; left = f.parts.Add(-1) {
			}
			if f.w != nil {
				f.w.Close()
			}
			d.done()
			return ctx.Err()
		}
	}
	return nil
}

// deleteExtra removes entries of a restored directory that the snapshot
// does not have.
func (r *Restorer) deleteExtra(d *dirState, keep map[string]bool) {
	names, err := d.list(-1)
	if err != nil {
		if e := r.entryError(d.path, err); e != nil {
			r.setErr(e)
		}
		return
	}
	inFlight := make(map[string]bool, len(keep))
	for k := range keep {
		inFlight[PartialName(k)] = true // a file of the snapshot being written
	}
	for _, name := range names {
		if keep[name] || inFlight[name] {
			continue
		}
		p := filepath.Join(d.path, name)
		if err := d.fd.RemoveAll(name); err != nil {
			if e := r.entryError(p, err); e != nil {
				r.setErr(e)
			}
			continue
		}
		r.Stats.Deleted.Add(1)
	}
}

// verifyFile re-reads a restored file (name in its directory: the
// partial one) through its directory handle and
// compares every chunk with its blob ID.
func (r *Restorer) verifyFile(fst *fileState, name string, buf []byte) (bool, []byte) {
	f, err := fst.dir.fd.OpenFile(name)
	if err != nil {
		return false, buf
	}
	defer f.Close()
	for i, id := range fst.node.Content {
		n := fst.lens[i]
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		b := buf[:n]
		if _, err := io.ReadFull(f, b); err != nil {
			return false, buf
		}
		if r.repo.Hash(b) != id {
			return false, buf
		}
	}
	var one [1]byte
	if n, _ := f.Read(one[:]); n != 0 {
		return false, buf
	}
	return true, buf
}

// sameContent reports whether the existing regular file name in d holds
// exactly n's content: every chunk, at the plaintext lengths the index
// knows, hashes to its blob ID. Anything unknown or unreadable is "no".
func (r *Restorer) sameContent(d *dirState, name string, n *tree.Node) bool {
	f, err := d.fd.OpenFile(name)
	if err != nil {
		return false
	}
	defer f.Close()
	var buf []byte
	for _, id := range n.Content {
		l, ok := r.repo.BlobLength(id, pack.DataBlob)
		if !ok {
			return false
		}
		if cap(buf) < l {
			buf = make([]byte, l)
		}
		b := buf[:l]
		if _, err := io.ReadFull(f, b); err != nil || r.repo.Hash(b) != id {
			return false
		}
	}
	var one [1]byte
	k, _ := f.Read(one[:])
	return k == 0
}

// VerifyFailures lists the files whose content read back differs from the
// snapshot (with Options.Verify).
func (r *Restorer) VerifyFailures() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.verifyBad...)
}

// Written returns how many files were written.
func (r *Restorer) Written() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.written
}
