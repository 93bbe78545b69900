package maintenance

import (
	"fmt"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/storagetest"
)

// TestSweepProvesRepackedCopiesInFewReads: after a repack, the sweep reads
// back every live blob of the repacked packs to prove its new copy, in a
// few range reads rather than one request per blob (on S3 each request
// costs time and money).
func TestSweepProvesRepackedCopiesInFewReads(t *testing.T) {
	ctx := t.Context()
	clock, store, pool, open, err := newSimWorld(ctx, 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	r, err := open(store)
	if err != nil {
		t.Fatal(err)
	}
	sess, _, err := r.BeginWrite(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	// One snapshot with every pool blob, one with half of them: forgetting
	// the first leaves the packs half used, so MaxUnused 0 repacks them.
	var all, half tree.Tree
	for i, data := range pool {
		id, _, err := r.SaveBlob(ctx, pack.DataBlob, data)
		if err != nil {
			t.Fatal(err)
		}
		n := &tree.Node{Name: tree.RawString(fmt.Sprint("f", i)), Type: tree.TypeFile, Mode: 0o644, Content: []tree.ID{id}, Size: uint64(len(data))}
		if err := all.Insert(n); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := half.Insert(n); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ids []snapshot.ID
	for _, tr := range []*tree.Tree{&all, &half} {
		enc, err := tr.Encode()
		if err != nil {
			t.Fatal(err)
		}
		root, _, err := r.SaveBlob(ctx, pack.TreeBlob, enc)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		sn := snapshot.New([]string{"/x"}, nil, "h", clock.Now())
		sn.Tree = root
		id, err := snapshot.Save(ctx, r, sn)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := sess.End(ctx); err != nil {
		t.Fatal(err)
	}
	if err := snapshot.Remove(ctx, r, ids[0]); err != nil {
		t.Fatal(err)
	}
	// Mark with a repack, kept waiting by the safety window.
	r, _ = open(store)
	res, err := Prune(ctx, r, Options{MaxUnused: 0, SafetyWindow: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.BlobsRepacked < len(pool)/4 {
		t.Fatalf("repacked %d blobs, want most of %d", res.BlobsRepacked, len(pool)/2)
	}
	// The sweep, counting reads.
	counter := &storagetest.CountLoads{Backend: store, Type: storage.PackFile}
	r, _ = open(counter)
	res2, err := Prune(ctx, r, Options{MaxUnused: 0})
	if err != nil {
		t.Fatal(err)
	}
	if res2.PacksDeleted == 0 {
		t.Fatalf("the sweep deleted nothing: %+v", res2)
	}
	// Trailers of the planned packs (1-2 reads each), tree loads, and the
	// proofs: far fewer than one read per repacked blob.
	if n := counter.Count(); n >= int64(res.BlobsRepacked) {
		t.Errorf("the sweep made %d pack reads for %d repacked blobs: proofs are not batched", n, res.BlobsRepacked)
	}
	t.Logf("repacked %d blobs; the sweep deleted %d packs with %d pack reads", res.BlobsRepacked, res2.PacksDeleted, counter.Count())
}
