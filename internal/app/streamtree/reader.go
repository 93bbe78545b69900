package streamtree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/bunkerbackup/bunker/internal/source"
)

// Repo is what reading a backup tree needs of a repository.
type Repo = restorer.Repo

// Reader is a source.Tree: it reads the files of a backup back from a
// snapshot tree.
type Reader struct {
	repo Repo
	root ID
}

// NewReader reads the tree root of repo.
func NewReader(repo Repo, root ID) *Reader { return &Reader{repo: repo, root: root} }

// ErrNotFound is returned for a path the backup does not have.
var ErrNotFound = errors.New("not in the backup")

// Node returns the node at the slash-separated path p.
func (r *Reader) Node(ctx context.Context, p string) (*tree.Node, error) {
	n, err := restorer.FindNode(ctx, r.repo, r.root, path.Clean("/"+p))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (%v)", p, ErrNotFound, err)
	}
	return n, nil
}

// Stat returns the entry at p ("" is the root).
func (r *Reader) Stat(ctx context.Context, p string) (source.Entry, error) {
	if isRoot(p) {
		return source.Entry{Type: source.TypeDir}, nil
	}
	n, err := r.Node(ctx, p)
	if err != nil {
		return source.Entry{}, err
	}
	return entry(n), nil
}

func isRoot(p string) bool { return p == "" || p == "/" || p == "." }

func entry(n *tree.Node) source.Entry {
	e := source.Entry{Name: string(n.Name), Type: source.EntryType(n.Type), Size: int64(n.Size), Target: string(n.LinkTarget),
		Meta: source.Meta{Mode: fs.FileMode(n.Mode), ModTime: n.ModTime, UID: n.UID, GID: n.GID, User: n.User, Group: n.Group}}
	return e
}

// List returns the entries of the directory p in name order.
func (r *Reader) List(ctx context.Context, p string) ([]source.Entry, error) {
	id := r.root
	if !isRoot(p) {
		n, err := r.Node(ctx, p)
		if err != nil {
			return nil, err
		}
		if n.Type != tree.TypeDir || n.Subtree == nil {
			return nil, fmt.Errorf("%s is not a directory in the backup", p)
		}
		id = *n.Subtree
	}
	t, err := walker.LoadTree(ctx, r.repo, id)
	if err != nil {
		return nil, err
	}
	out := make([]source.Entry, len(t.Nodes))
	for i, n := range t.Nodes {
		out[i] = entry(n)
	}
	return out, nil
}

// Open returns a reader of the file at p.
func (r *Reader) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	n, err := r.Node(ctx, p)
	if err != nil {
		return nil, err
	}
	if n.Type != tree.TypeFile {
		return nil, fmt.Errorf("%s is a %s in the backup, not a file", p, n.Type)
	}
	return NewContentReader(ctx, r.repo, n), nil
}

// prefetch is how many blobs a content reader loads ahead of its reader.
const prefetch = 4

type blobResult struct {
	data []byte
	err  error
}

// contentReader streams the blobs of a file in order, loading a few ahead
// so that decryption and decompression overlap with the consumer.
type contentReader struct {
	cancel context.CancelFunc
	ch     chan blobResult
	cur    []byte
	err    error
	done   chan struct{}
}

// NewContentReader reads the content of the file node n.
func NewContentReader(ctx context.Context, repo Repo, n *tree.Node) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	c := &contentReader{cancel: cancel, ch: make(chan blobResult, prefetch), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.ch)
		for i, id := range n.Content {
			data, err := repo.LoadBlob(ctx, pack.DataBlob, id, nil)
			if err != nil {
				err = fmt.Errorf("blob %d of %d (%s): %w", i+1, len(n.Content), id.Short(), err)
			}
			select {
			case c.ch <- blobResult{data, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

func (c *contentReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		r, ok := <-c.ch
		if !ok {
			c.err = io.EOF
			continue
		}
		if r.err != nil {
			c.err = r.err
			continue
		}
		c.cur = r.data
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

func (c *contentReader) Close() error {
	c.cancel()
	<-c.done
	return nil
}
