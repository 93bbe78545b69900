package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/local"
)

// password of every generated repository: the keys use crypto.WeakKDF,
// since what is measured is planning, not key derivation.
const password = "prunesim"

// sidecarName is the file beside the repository's objects that records
// the layout; -gen writes it last, so its presence means the repository
// is complete.
const sidecarName = "prunesim.json"

// baseTime is the time of the first snapshot; snapshot s is s hours later.
var baseTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// generate writes the repository of lay into dir (which must not hold
// one): trees and snapshots through a real write session, then the index
// files of the data blobs, then the sidecar.
func generate(ctx context.Context, dir string, lay *layout) error {
	start := time.Now()
	be, err := local.Create(dir)
	if err != nil {
		return err
	}
	r, err := repository.Init(ctx, be, password, repository.Options{KDF: crypto.WeakKDF()})
	if err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	defer r.Close()
	// The trees first: BeginWrite loads the index, which must not hold
	// the data blobs yet (at 100M blobs that alone is gigabytes).
	sess, _, err := r.BeginWrite(ctx, "prunesim")
	if err != nil {
		return err
	}
	defer sess.End(context.WithoutCancel(ctx))
	sh := lay.shape()
	roots, trees, err := saveTrees(ctx, r, lay, sh)
	if err != nil {
		return err
	}
	if err := r.Flush(ctx); err != nil {
		return fmt.Errorf("flush trees: %w", err)
	}
	treeTime := time.Since(start)
	for s, root := range roots {
		sn := snapshot.New([]string{"/data"}, nil, "prunesim", baseTime.Add(time.Duration(s)*time.Hour))
		sn.Tree = root
		if _, err := sess.CommitAndContinue(ctx, sn); err != nil {
			return fmt.Errorf("snapshot %d: %w", s, err)
		}
	}
	if err := sess.End(ctx); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	snapTime := time.Since(start) - treeTime
	files, err := saveIndex(ctx, r, lay)
	if err != nil {
		return err
	}
	indexTime := time.Since(start) - treeTime - snapTime
	b, err := json.MarshalIndent(lay, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, sidecarName), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write sidecar: %w", err)
	}
	usage := map[storage.FileType]int64{}
	for _, t := range []storage.FileType{storage.IndexFile, storage.PackFile, storage.SnapshotFile} {
		usage[t], err = dirBytes(filepath.Join(dir, string(t)))
		if err != nil {
			return err
		}
	}
	// The generator's own peak, to show it stays small at any count.
	rss, _ := peakRSS()
	fmt.Printf("gen blobs=%d packs=%d per_pack=%d snapshots=%d files=%d dirs=%d mids=%d dead_mids=%d window_mids=%d trees=%d data_index_files=%d trees_s=%.1f snapshots_s=%.1f index_s=%.1f total_s=%.1f index_bytes=%d tree_pack_bytes=%d snapshot_bytes=%d peak_rss=%d\n",
		lay.Blobs, lay.packs(), lay.PerPack, lay.Snapshots, sh.files, sh.dirs, sh.mids, sh.deadMids, min(lay.Window, sh.mids-sh.deadMids), trees, files,
		treeTime.Seconds(), snapTime.Seconds(), indexTime.Seconds(), time.Since(start).Seconds(),
		usage[storage.IndexFile], usage[storage.PackFile], usage[storage.SnapshotFile], rss)
	return nil
}

// saveTrees saves the directory trees of every live mid directory and one
// root per snapshot, returning the roots and how many trees were saved
// (a split directory counts once).
func saveTrees(ctx context.Context, r *repository.Repository, lay *layout, sh shape) ([]format.ID, int, error) {
	save := func(b []byte) (format.ID, error) {
		id, _, err := r.SaveBlob(ctx, pack.TreeBlob, b)
		return id, err
	}
	mtime := baseTime.Add(-24 * time.Hour)
	dirNode := func(name string, id format.ID) *tree.Node {
		return &tree.Node{Name: tree.RawString(name), Type: tree.TypeDir, Mode: uint32(fs.ModeDir | 0o755), ModTime: mtime, Subtree: &id}
	}
	var (
		leaf, mid   tree.Tree
		curDir      = -1
		curMid      = -1
		mids        []format.ID // live mids in order
		saved       int
		flushLeaf   func() error
		flushMid    func() error
		saveCounted = func(t *tree.Tree) (format.ID, error) { saved++; return tree.Save(t, save) }
	)
	flushLeaf = func() error {
		if curDir < 0 || curMid < sh.deadMids {
			return nil
		}
		id, err := saveCounted(&leaf)
		if err != nil {
			return fmt.Errorf("save directory %d: %w", curDir, err)
		}
		mid.Nodes = append(mid.Nodes, dirNode(fmt.Sprintf("dir-%09d", curDir), id))
		return nil
	}
	flushMid = func() error {
		if curMid < sh.deadMids {
			return nil
		}
		id, err := saveCounted(&mid)
		if err != nil {
			return fmt.Errorf("save mid directory %d: %w", curMid, err)
		}
		mids = append(mids, id)
		return nil
	}
	err := lay.eachFile(sh, func(f, dir, m, start, end int) error {
		if dir != curDir {
			if err := flushLeaf(); err != nil {
				return err
			}
			leaf = tree.Tree{}
			if m != curMid {
				if err := flushMid(); err != nil {
					return err
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				mid = tree.Tree{}
				curMid = m
			}
			curDir = dir
		}
		if m < sh.deadMids || lay.deadFile(f) {
			return nil
		}
		n := &tree.Node{Name: tree.RawString(fmt.Sprintf("file-%09d", f)), Type: tree.TypeFile, Mode: 0o644, ModTime: mtime, UID: 1000, GID: 1000, Inode: uint64(f + 2)}
		for i := start; i < end; i++ {
			n.Content = append(n.Content, lay.blobID(i))
			n.Size += uint64(lay.rawLength(i))
		}
		leaf.Nodes = append(leaf.Nodes, n)
		return nil
	})
	if err == nil {
		err = flushLeaf()
	}
	if err == nil {
		err = flushMid()
	}
	if err != nil {
		return nil, 0, err
	}
	// Snapshot s references a window of Window consecutive live mids that
	// slides from the first to the last over the snapshots, plus a small
	// file of its own, so every root differs and every live mid is
	// referenced by some snapshot.
	live := len(mids)
	w := min(lay.Window, live)
	roots := make([]format.ID, lay.Snapshots)
	for s := range roots {
		first := 0
		if lay.Snapshots > 1 {
			first = s * (live - w) / (lay.Snapshots - 1)
		}
		root := tree.Tree{Nodes: []*tree.Node{{Name: "info", Type: tree.TypeFile, Mode: 0o644, ModTime: baseTime.Add(time.Duration(s) * time.Hour), Size: uint64(s)}}}
		for m := first; m < first+w; m++ {
			root.Nodes = append(root.Nodes, dirNode(fmt.Sprintf("mid-%07d", sh.deadMids+m), mids[m]))
		}
		id, err := saveCounted(&root)
		if err != nil {
			return nil, 0, fmt.Errorf("save root of snapshot %d: %w", s, err)
		}
		roots[s] = id
	}
	return roots, saved, nil
}

// saveIndex writes the index files of the data blobs, PerIndexFile
// entries (rounded down to whole packs) each, one file in memory at a
// time. It returns how many it wrote.
func saveIndex(ctx context.Context, r *repository.Repository, lay *layout) (int, error) {
	packsPerFile := lay.PerIndexFile / lay.PerPack
	var entries []pack.Entry
	n := 0
	for first := 0; first < lay.packs(); first += packsPerFile {
		f := &index.File{}
		for p := first; p < min(lay.packs(), first+packsPerFile); p++ {
			f.Packs = append(f.Packs, lay.packID(p))
			entries = lay.packEntries(p, entries[:0])
			for _, e := range entries {
				f.Entries = append(f.Entries, index.FileEntry{Pack: uint32(len(f.Packs) - 1), Entry: e})
			}
		}
		b := index.EncodeFile(r.Key(), f)
		h := storage.Handle{Type: storage.IndexFile, Name: pack.Name(pack.Hash(b))}
		if err := r.Backend().Save(ctx, h, b, storage.SaveOptions{}); err != nil {
			return n, fmt.Errorf("save index file %d: %w", n, err)
		}
		n++
	}
	return n, nil
}

// dirBytes is the size of the files below dir.
func dirBytes(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("measure %s: %w", dir, err)
	}
	return total, nil
}
