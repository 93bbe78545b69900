package repository_test

// The golden fixture repository testdata/repo-v1 pins repository format
// v1: it was written once by this version of bunker, and every later
// version must read it exactly (docs/FORMAT.md, "Compatibility"). If one of
// these tests fails, the change broke reading existing repositories; fix
// the change, do not regenerate the fixture. Regenerating is only for a
// deliberate new format version (which then keeps a copy of the old
// fixture) or while v1 is not yet released:
//
//	go test ./internal/engine/repository -run 'TestGolden|TestVectors' -update-golden

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/checker"
	"github.com/bunkerbackup/bunker/internal/engine/chunker"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/local"
)

const (
	goldenDir      = "../../../testdata/repo-v1"
	goldenPassword = "bunker-golden"
	goldenHost     = "golden-host"
)

// Expected is testdata/repo-v1/expected.json: what the fixture holds,
// computed by the generator from its inputs (not read back from the
// repository).
type Expected struct {
	Comment  string            `json:"comment"`
	Password string            `json:"password"`
	Config   ExpectedConfig    `json:"config"`
	Keys     []string          `json:"keys"`
	Packs    map[string]string `json:"packs"` // name -> "data" or "tree"
	Index    []string          `json:"index"`
	// Snapshots, oldest first.
	Snapshots []ExpectedSnapshot `json:"snapshots"`
	Plans     []ExpectedPlan     `json:"plans"`
	Sessions  []string           `json:"sessions"`
	// Chunking lists the blob IDs of the file made by goldenBigFile.
	Chunking []string `json:"chunking"`
}

// ExpectedConfig are the config fields that do not change.
type ExpectedConfig struct {
	ID               string   `json:"id"`
	Version          int      `json:"version"`
	RequiredFeatures []string `json:"required_features"`
	ChunkMin         int      `json:"chunk_min"`
	ChunkAvg         int      `json:"chunk_avg"`
	ChunkMax         int      `json:"chunk_max"`
	PackSize         int      `json:"pack_size"`
	Compression      string   `json:"compression"`
}

// ExpectedSnapshot is one snapshot and the entries below Root.
type ExpectedSnapshot struct {
	ID       string    `json:"id"`
	Time     time.Time `json:"time"`
	Tree     string    `json:"tree"`
	Paths    []string  `json:"paths"`
	Hostname string    `json:"hostname"`
	Tags     []string  `json:"tags"`
	Kind     string    `json:"kind"`
	Parent   string    `json:"parent,omitempty"`
	// Root is the "/"-separated path inside the snapshot's tree under which
	// Entries lie ("" for the root tree).
	Root    string          `json:"root"`
	Entries []ExpectedEntry `json:"entries"`
}

// ExpectedEntry is one node below the root, in walk order (depth first,
// sorted by name).
type ExpectedEntry struct {
	Path       tree.RawString `json:"path"`
	Type       tree.NodeType  `json:"type"`
	Mode       uint32         `json:"mode"`
	Size       uint64         `json:"size"`
	ModTime    *time.Time     `json:"mtime,omitempty"`
	LinkTarget tree.RawString `json:"linktarget,omitempty"`
	SHA256     string         `json:"sha256,omitempty"` // of the content of a file
	Blobs      []string       `json:"blobs,omitempty"`
	Xattrs     []tree.Xattr   `json:"xattrs,omitempty"`
	Device     uint64         `json:"device,omitempty"`
	Error      string         `json:"error,omitempty"`
}

// ExpectedPlan is a maintenance plan still waiting for a session.
type ExpectedPlan struct {
	Name     string   `json:"name"`
	Packs    []string `json:"packs"`
	Sessions []string `json:"sessions"`
}

// goldenBigFile is the multi-chunk file of the fixture: 24 KiB of
// ChaCha8 output, so it can be made again to check chunking.
func goldenBigFile() []byte {
	var seed [32]byte
	copy(seed[:], "bunker golden fixture big.bin v1")
	b := make([]byte, 24<<10)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// goldenText is a compressible file (its blobs are stored zstd-compressed).
func goldenText() []byte {
	var b bytes.Buffer
	for i := range 300 {
		b.WriteString("line ")
		b.WriteString(strings.Repeat("x", i%17))
		b.WriteString(" of the golden fixture text file\n")
	}
	return b.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func ids(l []format.ID) []string {
	out := make([]string, len(l))
	for i, id := range l {
		out[i] = id.String()
	}
	return out
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------- reading

// copyFixture copies testdata/repo-v1 to a temporary directory, so that
// nothing a test does can change the committed fixture.
func copyFixture(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "repo")
	err := filepath.WalkDir(goldenDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(goldenDir, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o444)
	})
	if err != nil {
		t.Fatalf("copy fixture (regenerate only for a deliberate format change): %v", err)
	}
	return dst
}

func loadExpected(t *testing.T) *Expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, "expected.json"))
	check(t, err)
	var e Expected
	check(t, json.Unmarshal(b, &e))
	return &e
}

func openGolden(t *testing.T, dir string) *repository.Repository {
	t.Helper()
	be, err := local.New(dir)
	check(t, err)
	r, err := repository.Open(context.Background(), be, goldenPassword, "")
	check(t, err)
	return r
}

func TestGoldenRepoV1(t *testing.T) {
	if *repository.UpdateGolden {
		generateGolden(t)
	}
	ctx := context.Background()
	exp := loadExpected(t)
	dir := copyFixture(t)
	r := openGolden(t, dir)

	t.Run("config", func(t *testing.T) {
		c := r.Config()
		got := ExpectedConfig{ID: c.ID, Version: c.Version, RequiredFeatures: c.RequiredFeatures, ChunkMin: c.Chunker.Min,
			ChunkAvg: c.Chunker.Avg, ChunkMax: c.Chunker.Max, PackSize: c.PackSize, Compression: c.Compression}
		if !jsonEqual(got, exp.Config) {
			t.Fatalf("config %+v, want %+v", got, exp.Config)
		}
		if len(c.IDKey) != 32 || len(c.Chunker.Seed) != 32 {
			t.Fatal("id key or chunker seed not 32 bytes")
		}
		if _, err := repository.Open(ctx, r.Backend(), "wrong password", ""); !errors.Is(err, repository.ErrWrongPassword) {
			t.Fatalf("wrong password: %v", err)
		}
	})

	t.Run("layout-and-names", func(t *testing.T) {
		checkLayout(t, dir, exp)
	})

	check(t, r.LoadIndex(ctx, true))

	t.Run("index", func(t *testing.T) {
		files, errs, err := r.IndexFiles(ctx)
		check(t, err)
		if len(errs) > 0 {
			t.Fatalf("damaged index files: %v", errs)
		}
		var names []string
		superseding := 0
		for id, f := range files {
			names = append(names, id.String())
			if len(f.Supersedes) > 0 {
				superseding++
			}
			for _, p := range f.Packs {
				if _, ok := exp.Packs[p.String()]; !ok {
					t.Errorf("index %s names pack %s, which is not stored", id.Short(), p.Short())
				}
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, exp.Index) {
			t.Fatalf("index files %v, want %v", names, exp.Index)
		}
		if superseding != 1 {
			t.Fatalf("%d index files supersede others, want the one written by prune's compaction", superseding)
		}
		packs := r.Index().Packs()
		if len(packs) != len(exp.Packs) {
			t.Fatalf("index knows %d packs, %d are stored", len(packs), len(exp.Packs))
		}
	})

	t.Run("snapshots", func(t *testing.T) {
		snaps, errs, err := snapshot.LoadAll(ctx, r)
		check(t, err)
		if len(errs) > 0 {
			t.Fatalf("unreadable snapshots: %v", errs)
		}
		if len(snaps) != len(exp.Snapshots) {
			t.Fatalf("%d snapshots, want %d", len(snaps), len(exp.Snapshots))
		}
		for i, sn := range snaps {
			es := exp.Snapshots[i]
			parent := ""
			if sn.Parent != nil {
				parent = sn.Parent.String()
			}
			if sn.ID.String() != es.ID || !sn.Time.Equal(es.Time) || sn.Tree.String() != es.Tree || !slices.Equal(sn.Paths, es.Paths) ||
				sn.Hostname != es.Hostname || !slices.Equal(sn.Tags, es.Tags) || sn.Kind != es.Kind || parent != es.Parent {
				t.Fatalf("snapshot %d is %+v, want %+v", i, sn, es)
			}
			t.Run(sn.ShortID(), func(t *testing.T) {
				got := walkSnapshot(t, r, sn.Tree, es.Root)
				if len(got) != len(es.Entries) {
					t.Errorf("%d entries, want %d", len(got), len(es.Entries))
				}
				for j := range min(len(got), len(es.Entries)) {
					if !jsonEqual(got[j], es.Entries[j]) {
						g, _ := json.Marshal(got[j])
						w, _ := json.Marshal(es.Entries[j])
						t.Errorf("entry %d:\n got %s\nwant %s", j, g, w)
					}
				}
			})
		}
		if s, err := snapshot.Find(snaps, "latest", snapshot.Filter{}); err != nil || s.ID.String() != exp.Snapshots[len(exp.Snapshots)-1].ID {
			t.Fatalf("latest: %v %v", s, err)
		}
	})

	t.Run("plans-and-sessions", func(t *testing.T) {
		plans, err := r.Plans(ctx)
		check(t, err)
		var got []ExpectedPlan
		for _, p := range plans {
			got = append(got, ExpectedPlan{Name: p.Name, Packs: ids(p.Packs), Sessions: p.Sessions})
			for _, pk := range p.Packs {
				if !r.Index().Excluded(pk) {
					t.Errorf("pack %s of plan %s is not excluded from the index", pk.Short(), p.Name)
				}
			}
		}
		if !jsonEqual(got, exp.Plans) {
			t.Fatalf("plans %+v, want %+v", got, exp.Plans)
		}
		sessions, err := r.Sessions(ctx)
		check(t, err)
		var names []string
		for _, s := range sessions {
			names = append(names, s.Name)
		}
		if !slices.Equal(names, exp.Sessions) {
			t.Fatalf("sessions %v, want %v", names, exp.Sessions)
		}
	})

	t.Run("check-read-data", func(t *testing.T) {
		// The checker needs a repository whose index is not loaded yet.
		res, err := checker.New(openGolden(t, dir), checker.Options{ReadData: true}).Run(ctx)
		check(t, err)
		for _, p := range res.Problems {
			if p.Harmless {
				t.Logf("check (harmless): %s", p)
			} else {
				t.Errorf("check: %s", p)
			}
		}
		if res.PacksRead != len(exp.Packs) || res.Snapshots != len(exp.Snapshots) {
			t.Errorf("check read %d packs and %d snapshots, want %d and %d", res.PacksRead, res.Snapshots, len(exp.Packs), len(exp.Snapshots))
		}
	})
}

// TestGoldenChunking checks that chunking the fixture's big file with the
// fixture's chunker parameters still gives the stored blobs. A change of
// the chunker (gear table, masks, normal point, cut rules) makes new
// backups stop deduplicating against existing repositories: it is a format
// change even though old data stays readable.
func TestGoldenChunking(t *testing.T) {
	exp := loadExpected(t)
	r := openGolden(t, copyFixture(t))
	c := r.Config()
	p := chunker.Params{Min: c.Chunker.Min, Avg: c.Chunker.Avg, Max: c.Chunker.Max, Seed: [32]byte(c.Chunker.Seed)}
	ch := chunker.New(bytes.NewReader(goldenBigFile()), p)
	var got []string
	var buf []byte
	for {
		var err error
		buf, err = ch.Next(buf)
		if err == io.EOF {
			break
		}
		check(t, err)
		got = append(got, r.Hash(buf).String())
	}
	if !slices.Equal(got, exp.Chunking) {
		t.Fatalf("the chunker cuts the golden file into %d blobs %v,\nthe fixture has %d %v", len(got), got, len(exp.Chunking), exp.Chunking)
	}
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// checkLayout checks the local backend's layout and the naming rules:
// content-addressed objects are named by the unkeyed BLAKE3-256 of their
// bytes, and packs live in a directory named by the first two hex digits.
func checkLayout(t *testing.T, dir string, exp *Expected) {
	t.Helper()
	hashName := func(p string) string {
		b, err := os.ReadFile(p)
		check(t, err)
		return pack.Hash(b).String()
	}
	list := func(sub string) []string {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		check(t, err)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	for _, typ := range []string{"keys", "index", "snapshots"} {
		for _, n := range list(typ) {
			if got := hashName(filepath.Join(dir, typ, n)); got != n {
				t.Errorf("%s/%s: content hash is %s", typ, n, got)
			}
		}
	}
	if keys := list("keys"); !slices.Equal(keys, exp.Keys) {
		t.Errorf("keys %v, want %v", keys, exp.Keys)
	}
	packs := map[string]string{}
	for _, shard := range list("packs") {
		for _, n := range list(filepath.Join("packs", shard)) {
			if n[:2] != shard {
				t.Errorf("pack %s in shard %s", n, shard)
			}
			p := filepath.Join(dir, "packs", shard, n)
			if got := hashName(p); got != n {
				t.Errorf("pack %s: content hash is %s", n, got)
			}
			b, err := os.ReadFile(p)
			check(t, err)
			h, err := format.ParseHeader(b, format.TypePack)
			check(t, err)
			packs[n] = pack.BlobType(h.Sub).String()
		}
	}
	if !jsonEqual(packs, exp.Packs) {
		t.Errorf("packs %v, want %v", packs, exp.Packs)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "config"))
	check(t, err)
	if _, err := format.ParseHeader(cfg, format.TypeConfig); err != nil {
		t.Error(err)
	}
}

// walkSnapshot lists the entries below root (a "/"-separated path inside
// the tree) with their restored content.
func walkSnapshot(t *testing.T, r *repository.Repository, rootTree format.ID, root string) []ExpectedEntry {
	t.Helper()
	ctx := context.Background()
	load := func(id format.ID) *tree.Tree {
		b, err := r.LoadBlob(ctx, pack.TreeBlob, id, nil)
		check(t, err)
		if r.Hash(b) != id {
			t.Fatalf("tree %s: plaintext hashes to %s", id.Short(), r.Hash(b).Short())
		}
		tr, err := tree.Decode(b)
		check(t, err)
		// Trees are stored in canonical form.
		again, err := tr.Encode()
		check(t, err)
		if !bytes.Equal(again, b) {
			t.Fatalf("tree %s is not in canonical form", id.Short())
		}
		return tr
	}
	cur := rootTree
	if root != "" {
		for _, name := range strings.Split(root, "/") {
			n := load(cur).Find(name)
			if n == nil || n.Type != tree.TypeDir {
				t.Fatalf("snapshot tree has no directory %q on the way to %q", name, root)
			}
			cur = *n.Subtree
		}
	}
	var out []ExpectedEntry
	var walk func(id format.ID, prefix string)
	walk = func(id format.ID, prefix string) {
		for _, n := range load(id).Nodes {
			p := path.Join(prefix, string(n.Name))
			e := ExpectedEntry{Path: tree.RawString(p), Type: n.Type, Mode: n.Mode, Size: n.Size, LinkTarget: n.LinkTarget,
				Xattrs: n.Xattrs, Device: n.Device, Error: n.Error}
			if n.Type != tree.TypeSymlink {
				mt := n.ModTime
				e.ModTime = &mt
			}
			if n.Type == tree.TypeFile {
				var content []byte
				for _, b := range n.Content {
					e.Blobs = append(e.Blobs, b.String())
					data, err := r.LoadBlob(ctx, pack.DataBlob, b, nil)
					check(t, err)
					if r.Hash(data) != b {
						t.Fatalf("%s: blob %s hashes to %s", p, b.Short(), r.Hash(data).Short())
					}
					content = append(content, data...)
				}
				if uint64(len(content)) != n.Size && n.Error == "" {
					t.Errorf("%s: restored %d bytes, node says %d", p, len(content), n.Size)
				}
				e.SHA256 = sha(content)
			}
			out = append(out, e)
			if n.Type == tree.TypeDir {
				walk(*n.Subtree, p)
			}
		}
	}
	walk(cur, "")
	return out
}

// ---------------------------------------------------------------- writing

// goldenSource creates the directory backed up by the first snapshot and
// returns its entries as they must come back.
func goldenSource(t *testing.T, src string) []ExpectedEntry {
	mt := time.Date(2026, 1, 9, 8, 7, 6, 0, time.UTC)
	type file struct {
		name string
		data []byte
		mode fs.FileMode
	}
	big := goldenBigFile()
	files := []file{
		{"big.bin", big, 0o644},
		{"dup.bin", big, 0o640}, // same content: same blobs (deduplicated)
		{"empty", nil, 0o644},
		{"exec.sh", []byte("#!/bin/sh\necho golden\n"), 0o755},
		{"hello.txt", []byte("hello, bunker\n"), 0o644},
		{"sub/nested.txt", []byte("nested\n"), 0o600},
		{"text.txt", goldenText(), 0o644},
	}
	check(t, os.MkdirAll(filepath.Join(src, "sub", "deeper"), 0o755))
	for _, f := range files {
		p := filepath.Join(src, f.name)
		check(t, os.WriteFile(p, f.data, 0o600))
		check(t, os.Chmod(p, f.mode))
		check(t, os.Chtimes(p, mt, mt))
	}
	check(t, os.Symlink("hello.txt", filepath.Join(src, "link")))
	for _, d := range []string{"sub/deeper", "sub"} {
		check(t, os.Chmod(filepath.Join(src, d), 0o755))
		check(t, os.Chtimes(filepath.Join(src, d), mt, mt))
	}
	var out []ExpectedEntry
	check(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		check(t, err)
		if p == src {
			return nil
		}
		fi, err := os.Lstat(p)
		check(t, err)
		rel, _ := filepath.Rel(src, p)
		e := ExpectedEntry{Path: tree.RawString(filepath.ToSlash(rel)), Mode: uint32(fi.Mode())}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			check(t, err)
			e.Type, e.Size, e.SHA256, e.ModTime = tree.TypeFile, uint64(len(b)), sha(b), &mt
		case fi.IsDir():
			e.Type, e.ModTime = tree.TypeDir, &mt
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			check(t, err)
			e.Type, e.LinkTarget = tree.TypeSymlink, tree.RawString(target) // fsmeta records no size for symlinks
		}
		out = append(out, e)
		return nil
	}))
	return out
}

// manualTree is the tree of the second snapshot, written through the
// repository API: every node type and the RawString escape. reuse are the
// blobs of big.bin, referenced again without storing anything.
func manualTree(t *testing.T, r *repository.Repository, reuse []format.ID) (format.ID, []ExpectedEntry) {
	ctx := context.Background()
	mt := time.Date(2026, 1, 10, 11, 12, 13, 140000000, time.FixedZone("", 3600))
	content := map[*tree.Node][]byte{}
	file := func(name string, data []byte, mode fs.FileMode) *tree.Node {
		n := &tree.Node{Name: tree.RawString(name), Type: tree.TypeFile, Mode: uint32(mode), ModTime: mt, UID: 1000, GID: 1000,
			User: "golden", Group: "golden", Size: uint64(len(data))}
		if len(data) > 0 {
			id, _, err := r.SaveBlob(ctx, pack.DataBlob, data)
			check(t, err)
			n.Content = []format.ID{id}
		}
		content[n] = data
		return n
	}
	node := func(name string, typ tree.NodeType, mode fs.FileMode) *tree.Node {
		return &tree.Node{Name: tree.RawString(name), Type: typ, Mode: uint32(mode), ModTime: mt}
	}
	subtrees := map[*tree.Node]*tree.Tree{}
	var saveTree func(tr *tree.Tree) format.ID
	saveTree = func(tr *tree.Tree) format.ID {
		for _, n := range tr.Nodes {
			if st, ok := subtrees[n]; ok {
				id := saveTree(st)
				n.Subtree = &id
			}
		}
		b, err := tr.Encode()
		check(t, err)
		id, _, err := r.SaveBlob(ctx, pack.TreeBlob, b)
		check(t, err)
		return id
	}
	mk := func(nodes ...*tree.Node) *tree.Tree {
		tr := &tree.Tree{}
		for _, n := range nodes {
			check(t, tr.Insert(n))
		}
		return tr
	}

	dir, sub := node("dir", tree.TypeDir, fs.ModeDir|0o750), node("sub", tree.TypeDir, fs.ModeDir|0o700)
	subtrees[sub] = mk()
	subtrees[dir] = mk(file("inner.txt", []byte("inner\n"), 0o600), sub)
	dev := node("chardev", tree.TypeCharDev, fs.ModeDevice|fs.ModeCharDevice|0o620)
	dev.Device = 0x0501
	link := node("link\xff", tree.TypeSymlink, fs.ModeSymlink|0o777)
	link.LinkTarget = "caf\xe9.txt"
	big := goldenBigFile()
	reused := file("reused.bin", nil, 0o644)
	reused.Content, reused.Size, content[reused] = reuse, uint64(len(big)), big
	bad := file("unreadable", nil, 0)
	bad.Error = "open unreadable: permission denied"
	x := file("xattr.txt", []byte("x\n"), 0o644)
	x.Xattrs = []tree.Xattr{{Name: "user.comment", Value: []byte("golden")}, {Name: "user.\xff", Value: []byte{0, 1, 2}}}
	root := mk(file("caf\xe9.txt", []byte("a latin-1 file name\n"), 0o644), dev, dir,
		node("fifo", tree.TypeFIFO, fs.ModeNamedPipe|0o644), link, reused, bad, x)
	rootID := saveTree(root)

	// The entries as a reader must find them: depth first, by name.
	var exp []ExpectedEntry
	var walk func(tr *tree.Tree, prefix string)
	walk = func(tr *tree.Tree, prefix string) {
		for _, n := range tr.Nodes {
			p := path.Join(prefix, string(n.Name))
			e := ExpectedEntry{Path: tree.RawString(p), Type: n.Type, Mode: n.Mode, Size: n.Size, LinkTarget: n.LinkTarget,
				Xattrs: n.Xattrs, Device: n.Device, Error: n.Error}
			if n.Type != tree.TypeSymlink {
				e.ModTime = &mt
			}
			if n.Type == tree.TypeFile {
				e.SHA256, e.Blobs = sha(content[n]), ids(n.Content)
			}
			exp = append(exp, e)
			if st, ok := subtrees[n]; ok {
				walk(st, p)
			}
		}
	}
	walk(root, "")
	return rootID, exp
}

func generateGolden(t *testing.T) {
	ctx := context.Background()
	check(t, os.RemoveAll(goldenDir))
	be, err := local.Create(goldenDir)
	check(t, err)
	r, err := repository.Init(ctx, be, goldenPassword, repository.Options{KDF: crypto.WeakKDF(), ChunkMin: 256, ChunkAvg: 1024, ChunkMax: 4096, PackSize: 1 << 20})
	check(t, err)
	cfg := r.Config()
	exp := &Expected{
		Comment: "Golden repository of format v1, written once by internal/engine/repository/golden_test.go -update-golden. " +
			"Every later bunker must read it. Entries are listed below each snapshot's root, depth first.",
		Password: goldenPassword,
		Config: ExpectedConfig{ID: cfg.ID, Version: cfg.Version, RequiredFeatures: cfg.RequiredFeatures, ChunkMin: cfg.Chunker.Min,
			ChunkAvg: cfg.Chunker.Avg, ChunkMax: cfg.Chunker.Max, PackSize: cfg.PackSize, Compression: cfg.Compression},
		Packs: map[string]string{},
	}
	open := func() *repository.Repository {
		r, err := repository.Open(ctx, be, goldenPassword, "")
		check(t, err)
		return r
	}
	newSnap := func(paths, tags []string, tm time.Time) *snapshot.Snapshot {
		sn := snapshot.New(paths, tags, goldenHost, tm)
		sn.Username, sn.UID, sn.GID, sn.Program = "golden", 1000, 1000, "bunker golden-fixture"
		return sn
	}
	// throwaway stores a snapshot of one unique file and forgets it again,
	// leaving its packs unreferenced for prune.
	throwaway := func(r *repository.Repository, name string, tm time.Time) {
		id, _, err := r.SaveBlob(ctx, pack.DataBlob, []byte("throwaway content of "+name))
		check(t, err)
		tr := &tree.Tree{Nodes: []*tree.Node{{Name: tree.RawString(name), Type: tree.TypeFile, Mode: 0o644, ModTime: tm, Size: uint64(len("throwaway content of " + name)), Content: []format.ID{id}}}}
		b, err := tr.Encode()
		check(t, err)
		tid, _, err := r.SaveBlob(ctx, pack.TreeBlob, b)
		check(t, err)
		check(t, r.Flush(ctx))
		sn := newSnap([]string{"/" + name}, nil, tm)
		sn.Kind, sn.Tree = snapshot.KindStream, tid
		sid, err := snapshot.Save(ctx, r, sn)
		check(t, err)
		check(t, snapshot.Remove(ctx, r, sid))
	}

	// 1. A full backup of a real directory through the archiver.
	src := filepath.Join(t.TempDir(), "src")
	srcEntries := goldenSource(t, src)
	sess, err := r.StartSession(ctx, "backup")
	check(t, err)
	check(t, r.LoadIndex(ctx, false))
	arch, err := archiver.New(r, archiver.Options{Chunker: chunker.Params{Min: cfg.Chunker.Min, Avg: cfg.Chunker.Avg, Max: cfg.Chunker.Max, Seed: [32]byte(cfg.Chunker.Seed)}})
	check(t, err)
	rootA, err := arch.Snapshot(ctx, []string{src})
	check(t, err)
	check(t, r.Flush(ctx))
	snA := newSnap([]string{src}, []string{"golden", "v1"}, time.Date(2026, 1, 10, 10, 0, 0, 0, time.UTC))
	snA.Kind, snA.Tree = snapshot.KindFull, rootA
	_, err = snapshot.Save(ctx, r, snA)
	check(t, err)
	check(t, sess.End(ctx))

	// 2. A forgotten snapshot, pruned at once (no session is live): its
	// packs are deleted and the index compacted into one superseding file.
	throwaway(r, "forgotten-1", time.Date(2026, 1, 10, 10, 30, 0, 0, time.UTC))
	res, err := maintenance.Prune(ctx, open(), maintenance.Options{MaxUnused: 0.05})
	check(t, err)
	if res.PlansSwept != 1 || res.PacksDeleted != 2 || !res.IndexCompacted {
		t.Fatalf("first prune: %+v", res)
	}

	// 3. An incremental snapshot with a hand-made tree.
	r = open()
	sess, err = r.StartSession(ctx, "backup")
	check(t, err)
	check(t, r.LoadIndex(ctx, false))
	bigBlobs := walkBlobs(t, r, rootA, src, "big.bin")
	rootB, manualEntries := manualTree(t, r, bigBlobs)
	check(t, r.Flush(ctx))
	snB := newSnap([]string{"/manual"}, []string{"manual"}, time.Date(2026, 1, 11, 12, 0, 0, 0, time.FixedZone("", 3600)))
	snB.Kind, snB.Tree, snB.Parent, snB.Base = snapshot.KindIncremental, rootB, &snA.ID, &snA.ID
	snB.Metadata = map[string]string{"fixture": "manual tree"}
	_, err = snapshot.Save(ctx, r, snB)
	check(t, err)
	check(t, sess.End(ctx))

	// 4. A writer that never ended (its session object stays) and a plan
	// that waits for it: the packs of another forgotten snapshot are
	// tombstoned but not deleted.
	r = open()
	live, err := r.StartSession(ctx, "backup")
	check(t, err)
	_ = live // deliberately never ended
	check(t, r.LoadIndex(ctx, false))
	throwaway(r, "forgotten-2", time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC))
	res, err = maintenance.Prune(ctx, open(), maintenance.Options{MaxUnused: 0.05})
	check(t, err)
	if res.PlansSwept != 0 || res.PacksPlanned != 2 || res.PacksDeleted != 0 {
		t.Fatalf("second prune: %+v", res)
	}

	// Record what is stored.
	r = open()
	check(t, r.LoadIndex(ctx, true))
	for _, typ := range []storage.FileType{storage.KeyFile, storage.IndexFile, storage.PackFile} {
		infos, err := r.List(ctx, typ)
		check(t, err)
		for _, fi := range infos {
			switch typ {
			case storage.KeyFile:
				exp.Keys = append(exp.Keys, fi.Name)
			case storage.IndexFile:
				exp.Index = append(exp.Index, fi.Name)
			case storage.PackFile:
				b, err := storage.LoadAll(ctx, be, storage.Handle{Type: storage.PackFile, Name: fi.Name})
				check(t, err)
				exp.Packs[fi.Name] = pack.BlobType(b[6]).String()
			}
		}
	}
	plans, err := r.Plans(ctx)
	check(t, err)
	for _, p := range plans {
		exp.Plans = append(exp.Plans, ExpectedPlan{Name: p.Name, Packs: ids(p.Packs), Sessions: p.Sessions})
	}
	exp.Sessions = []string{live.Name}
	rootPath := strings.TrimPrefix(filepath.ToSlash(src), "/")
	for i := range srcEntries {
		e := &srcEntries[i]
		if e.Type == tree.TypeFile {
			e.Blobs = ids(walkBlobs(t, r, rootA, src, string(e.Path)))
		}
	}
	exp.Snapshots = []ExpectedSnapshot{
		{ID: snA.ID.String(), Time: snA.Time, Tree: rootA.String(), Paths: snA.Paths, Hostname: goldenHost, Tags: snA.Tags, Kind: snA.Kind,
			Root: rootPath, Entries: srcEntries},
		{ID: snB.ID.String(), Time: snB.Time, Tree: rootB.String(), Paths: snB.Paths, Hostname: goldenHost, Tags: snB.Tags, Kind: snB.Kind,
			Parent: snA.ID.String(), Entries: manualEntries},
	}
	exp.Chunking = ids(bigBlobs)

	js, err := json.MarshalIndent(exp, "", "  ")
	check(t, err)
	check(t, os.WriteFile(filepath.Join(goldenDir, "expected.json"), append(js, '\n'), 0o644))
	check(t, os.WriteFile(filepath.Join(goldenDir, "README.md"), []byte(goldenReadme(exp)), 0o644))
	// Objects are saved read-only; make the tree easy to replace.
	check(t, filepath.WalkDir(goldenDir, func(p string, d fs.DirEntry, err error) error {
		check(t, err)
		if !d.IsDir() {
			return os.Chmod(p, 0o644)
		}
		return nil
	}))
	t.Logf("wrote the golden repository to %s", goldenDir)
}

// walkBlobs returns the content of the file rel below the backed-up
// directory src in the tree root.
func walkBlobs(t *testing.T, r *repository.Repository, root format.ID, src, rel string) []format.ID {
	ctx := context.Background()
	cur := root
	parts := append(strings.Split(strings.TrimPrefix(filepath.ToSlash(src), "/"), "/"), strings.Split(rel, "/")...)
	for i, name := range parts {
		b, err := r.LoadBlob(ctx, pack.TreeBlob, cur, nil)
		check(t, err)
		tr, err := tree.Decode(b)
		check(t, err)
		n := tr.Find(name)
		if n == nil {
			t.Fatalf("no %q in the tree of %s", name, rel)
		}
		if i == len(parts)-1 {
			return n.Content
		}
		cur = *n.Subtree
	}
	return nil
}

func goldenReadme(exp *Expected) string {
	var b strings.Builder
	b.WriteString(`# Golden repository, format v1

This directory is a complete bunker repository in the layout of the local
backend, written once by

    go test ./internal/engine/repository -run 'TestGolden|TestVectors' -update-golden

and checked by TestGoldenRepoV1 and TestGoldenChunking
(internal/engine/repository/golden_test.go) on every test run. It pins
repository format v1 (docs/FORMAT.md): any change that stops bunker from
reading it, or from reading it exactly, fails those tests. Do not regenerate
it to make a failing test pass; that would hide a break of every existing
repository. Regenerate only for a deliberate, versioned format change (keep
the old fixture next to the new one then).

- Password: ` + "`" + exp.Password + "`" + `
- Key derivation: argon2id with test-only parameters (t=1, m=64 KiB, p=1)
- Chunker: min/avg/max ` + itoa(exp.Config.ChunkMin) + "/" + itoa(exp.Config.ChunkAvg) + "/" + itoa(exp.Config.ChunkMax) + ` bytes, pack size 1 MiB, zstd-fastest

What it holds (expected.json lists it exactly, with the SHA-256 of every
file's content and its blob IDs):

1. Snapshot 1 (tags golden, v1), a full backup through the archiver of a
   directory with a 24 KiB multi-chunk file (big.bin), an identical copy of
   it (dup.bin, deduplicated), an empty file, an executable, a symlink,
   a compressible text file (zstd-compressed blobs), a nested directory
   and an empty directory.
2. Snapshot 2 (tag manual), incremental with snapshot 1 as parent, built by
   hand: a non-UTF-8 file name and symlink name (the {"b64": ...} escape),
   extended attributes, a FIFO, a character device, an entry with an error,
   an empty directory, and a file reusing the blobs of big.bin.
3. One compacted index file that supersedes the index files of snapshot 1
   and of a forgotten snapshot pruned at once (its packs are gone), plus
   the index files written after it.
4. A session object of a writer that never ended, and a maintenance plan
   waiting for that session, tombstoning the packs of a second forgotten
   snapshot (the packs are still stored).

Files are stored as the backend writes them; git does not keep empty
directories or modification times, which reading does not need.
`)
	return b.String()
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
