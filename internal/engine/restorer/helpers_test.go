package restorer_test

import (
	"context"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// backUp creates a repository with cheap key derivation and opts on be,
// backs src up into it and returns it with the root tree, flushed.
func backUp(t *testing.T, be storage.Backend, opts repository.Options, src string) (*repository.Repository, tree.ID) {
	t.Helper()
	ctx := context.Background()
	opts.KDF = crypto.WeakKDF()
	r, err := repository.Init(ctx, be, "pw", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		t.Fatal(err)
	}
	return r, backUpAgain(t, r, src)
}

// backUpAgain backs src up into r, flushed, and returns the root tree.
func backUpAgain(t *testing.T, r *repository.Repository, src string) tree.ID {
	t.Helper()
	ctx := context.Background()
	a, err := archiver.New(r, archiver.Options{Chunker: r.Config().Chunker.Params()})
	if err != nil {
		t.Fatal(err)
	}
	root, err := a.Snapshot(ctx, []string{src})
	if err == nil {
		err = r.Flush(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return root
}
