package walker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// store builds trees in a real in-memory repository.
type store struct {
	t *testing.T
	r *repository.Repository
}

func newStore(t *testing.T) *store {
	t.Helper()
	ctx := context.Background()
	r, err := repository.Init(ctx, mem.New(), "pw", repository.Options{KDF: crypto.WeakKDF()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		t.Fatal(err)
	}
	return &store{t: t, r: r}
}

func (s *store) tree(nodes ...*tree.Node) tree.ID {
	s.t.Helper()
	t := &tree.Tree{Nodes: nodes}
	t.Sort()
	id, err := tree.Save(t, func(b []byte) (tree.ID, error) {
		id, _, err := s.r.SaveBlobWithID(context.Background(), pack.TreeBlob, s.r.Hash(b), b)
		return id, err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return id
}

func (s *store) flush() {
	s.t.Helper()
	if err := s.r.Flush(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

func file(name string) *tree.Node { return &tree.Node{Name: tree.RawString(name), Type: tree.TypeFile} }

func dir(name string, id tree.ID) *tree.Node {
	return &tree.Node{Name: tree.RawString(name), Type: tree.TypeDir, Subtree: &id}
}

// sample is /b, /a/{y,x}, /a/sub/z, /c — given out of order.
func sample(s *store) tree.ID {
	sub := s.tree(file("z"))
	a := s.tree(file("y"), dir("sub", sub), file("x"))
	root := s.tree(file("c"), dir("a", a), file("b"))
	s.flush()
	return root
}

func walk(t *testing.T, l walker.Loader, root tree.ID, fn func(p string, n *tree.Node) error) ([]string, error) {
	t.Helper()
	var seen []string
	err := walker.Walk(context.Background(), l, root, "/snap", func(p string, n *tree.Node) error {
		seen = append(seen, p)
		if fn != nil {
			return fn(p, n)
		}
		return nil
	})
	return seen, err
}

func TestWalkDepthFirstInNameOrder(t *testing.T) {
	s := newStore(t)
	seen, err := walk(t, s.r, sample(s), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/snap/a", "/snap/a/sub", "/snap/a/sub/z", "/snap/a/x", "/snap/a/y", "/snap/b", "/snap/c"}
	if !slices.Equal(seen, want) {
		t.Errorf("visited %v; want %v", seen, want)
	}
}

func TestWalkSkipDir(t *testing.T) {
	s := newStore(t)
	seen, err := walk(t, s.r, sample(s), func(p string, n *tree.Node) error {
		if p == "/snap/a/sub" {
			return walker.ErrSkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(seen, "/snap/a/sub/z") || !slices.Contains(seen, "/snap/a/x") {
		t.Errorf("visited %v: want sub skipped, its siblings kept", seen)
	}
}

func TestWalkStopsAtError(t *testing.T) {
	s := newStore(t)
	stop := errors.New("stop")
	seen, err := walk(t, s.r, sample(s), func(p string, n *tree.Node) error {
		if p == "/snap/a/x" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen[len(seen)-1] != "/snap/a/x" {
		t.Errorf("err %v after %v; want stop right after /snap/a/x", err, seen)
	}
}

// TestWalkMissingTree: a subtree that cannot be loaded ends the walk with
// an error naming it, after the entries before it were visited.
func TestWalkMissingTree(t *testing.T) {
	s := newStore(t)
	missing := s.r.Hash([]byte("no such tree"))
	root := s.tree(file("a"), dir("gone", missing), file("z"))
	s.flush()
	seen, err := walk(t, s.r, root, nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("load tree %s", missing.Short())) {
		t.Errorf("err %v; want one naming tree %s", err, missing.Short())
	}
	if !slices.Equal(seen, []string{"/snap/a", "/snap/gone"}) {
		t.Errorf("visited %v", seen)
	}
}

func TestWalkCanceled(t *testing.T) {
	s := newStore(t)
	root := sample(s)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := walker.Walk(ctx, s.r, root, "/", func(p string, _ *tree.Node) error {
		if n++; n == 2 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 2 {
		t.Errorf("err %v after %d nodes; want Canceled after 2", err, n)
	}
}

// TestLoadTreeChunks: a tree stored whole has no chunk IDs.
func TestLoadTreeChunks(t *testing.T) {
	s := newStore(t)
	root := sample(s)
	tr, chunks, err := walker.LoadTreeChunks(context.Background(), s.r, root)
	if err != nil || len(tr.Nodes) != 3 || chunks != nil {
		t.Errorf("tree %v, chunks %v, err %v", tr, chunks, err)
	}
}
