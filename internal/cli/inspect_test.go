package cli_test

import (
	"encoding/json"
	"path"
	"path/filepath"
	"testing"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// indexBlob is one entry of "cat index" output.
type indexBlob struct {
	Pack      string `json:"pack"`
	Type      string `json:"type"`
	ID        string `json:"id"`
	Offset    int64  `json:"offset"`
	Length    int64  `json:"length"`
	RawLength int64  `json:"raw_length"`
}

// indexBlobs returns the entries of every index file of the repository
// (read with "bunker cat index").
func (e *repoEnv) indexBlobs() []indexBlob {
	e.t.Helper()
	var all []indexBlob
	for _, f := range listRepoFiles(e.t, e.repo, "index") {
		r := e.mustRun("cat", "index", filepath.Base(f))
		var idx struct {
			Blobs []indexBlob `json:"blobs"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &idx); err != nil {
			e.t.Fatalf("decode cat index: %v\n%s", err, r)
		}
		all = append(all, idx.Blobs...)
	}
	return all
}

// packsOf maps each data blob ID to the packs holding it, and each pack to
// its blob type.
func (e *repoEnv) packsOf() (blobPacks map[string][]string, packType map[string]string) {
	e.t.Helper()
	blobPacks, packType = map[string][]string{}, map[string]string{}
	for _, b := range e.indexBlobs() {
		if b.Type == "data" {
			blobPacks[b.ID] = append(blobPacks[b.ID], b.Pack)
		}
		packType[b.Pack] = b.Type
	}
	return blobPacks, packType
}

// snapshotTree returns the root tree ID of a snapshot.
func (e *repoEnv) snapshotTree(ref string) string {
	e.t.Helper()
	r := e.mustRun("cat", "snapshot", ref)
	var sn struct {
		Tree string `json:"tree"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &sn); err != nil {
		e.t.Fatalf("decode cat snapshot: %v\n%s", err, r)
	}
	return sn.Tree
}

// fileContents walks the snapshot's trees (with "cat tree") and returns the
// data blob IDs of every regular file by absolute snapshot path.
func (e *repoEnv) fileContents(ref string) map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	var walk func(id, p string)
	walk = func(id, p string) {
		r := e.mustRun("cat", "tree", id)
		t, err := tree.Decode([]byte(r.Stdout))
		if err != nil {
			e.t.Fatalf("decode tree %s: %v", id, err)
		}
		for _, c := range t.Chunks { // a split directory
			walk(c.String(), p)
		}
		for _, n := range t.Nodes {
			np := path.Join(p, string(n.Name))
			switch n.Type {
			case tree.TypeDir:
				walk(n.Subtree.String(), np)
			case tree.TypeFile:
				var ids []string
				for _, c := range n.Content {
					ids = append(ids, c.String())
				}
				out[np] = ids
			}
		}
	}
	walk(e.snapshotTree(ref), "/")
	return out
}

// packFile is the path of a pack in a local repository.
func packFile(repo, id string) string { return filepath.Join(repo, "packs", id[:2], id) }

// requireExitNonZero fails unless the command failed cleanly.
func requireFailure(t *testing.T, r result) {
	t.Helper()
	if r.Code == 0 {
		t.Fatalf("want a non-zero exit code:\n%s", r)
	}
	if r.Code < 0 {
		t.Fatalf("command panicked:\n%s", r)
	}
}
