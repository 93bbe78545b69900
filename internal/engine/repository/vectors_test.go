package repository

// Golden test vectors for the primitives of format v1 (docs/FORMAT.md,
// "Test vectors"). Nonces are random, so the sealed objects cannot be
// reproduced from their inputs; instead they were sealed once and are kept
// in testdata/vectors. These tests check that they still decode to the
// same values, forever. Regenerate (only for a deliberate format change,
// which also needs a new format version) with
//
//	go test ./internal/engine/repository -run 'TestGolden|TestVectors' -update-golden

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/index"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// UpdateGolden regenerates testdata/vectors and testdata/repo-v1.
var UpdateGolden = flag.Bool("update-golden", false, "regenerate the golden test vectors and fixture repository under testdata/")

// vectorsDir is testdata/vectors at the top of the module.
const vectorsDir = "../../../testdata/vectors"

// seq returns n bytes start, start+1, ...
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// The fixed inputs of the vectors. vectors.json repeats them for other
// implementations; these functions are the source of truth.
var (
	vecMasterKey   = seq(0x00, 32)
	vecIDKey       = seq(0x20, 32)
	vecChunkerSeed = seq(0x40, 32)
	vecKDFSalt     = seq(0x60, 32)
	vecKDF         = crypto.KDFParams{Algorithm: "argon2id", Time: 1, MemoryKiB: 64, Threads: 1, Salt: vecKDFSalt}
	vecPassword    = "test"
	vecTime        = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("", 2*3600))
	vecSupersedes  = ID(bytes.Repeat([]byte{0xee}, 32))
	vecParent      = ID(bytes.Repeat([]byte{0xaa}, 32))
	vecSessionName = "s-000102030405060708090a0b"
)

// vecBlobs are the plaintexts of the data pack vector, in pack order.
func vecBlobs() [][]byte {
	return [][]byte{
		[]byte("hello, bunker\n"),            // stored raw (flag 0): zstd does not shrink it
		bytes.Repeat([]byte("bunker "), 100), // stored compressed (flag 1)
		{},                                   // empty blob (flag 0)
		[]byte("\x00\x01\x02\xff binary payload"), // raw
	}
}

func vecConfig() *Config {
	return &Config{
		Version:          1,
		ID:               "00112233445566778899aabbccddeeff",
		Created:          time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		RequiredFeatures: []string{},
		Chunker:          ChunkerConfig{Min: 256, Avg: 1024, Max: 4096, Seed: vecChunkerSeed},
		IDKey:            vecIDKey,
		Compression:      "zstd-fastest",
		PackSize:         1 << 20,
	}
}

// vecTree is the tree of the tree pack; its nodes exercise the RawString
// escape, every optional field and every node type.
func vecTree() *tree.Tree {
	hello := vecBlobID(vecBlobs()[0])
	rep := vecBlobID(vecBlobs()[1])
	sub := ID(bytes.Repeat([]byte{0x55}, 32))
	mt := time.Date(2025, 12, 31, 23, 59, 58, 999000000, time.UTC)
	t := &tree.Tree{}
	for _, n := range []*tree.Node{
		{Name: "caf\xe9.txt", Type: tree.TypeFile, Mode: 0o644, ModTime: mt, AccessTime: mt.Add(time.Second), ChangeTime: mt.Add(2 * time.Second),
			UID: 1000, GID: 100, User: "user", Group: "users", Inode: 4242, DeviceID: 2049, Links: 2, Size: 714,
			Content: []ID{hello, rep}, Xattrs: []tree.Xattr{{Name: "user.comment", Value: []byte("golden")}, {Name: "user.\xff", Value: []byte{0, 1, 2}}}},
		{Name: "dir", Type: tree.TypeDir, Mode: uint32(0o755 | 1<<31), ModTime: mt, Subtree: &sub},
		{Name: "empty", Type: tree.TypeFile, Mode: 0o600, ModTime: mt},
		{Name: "fifo", Type: tree.TypeFIFO, Mode: uint32(0o644 | 1<<25), ModTime: mt},
		{Name: "link", Type: tree.TypeSymlink, Mode: uint32(0o777 | 1<<27), ModTime: mt, LinkTarget: "\xff\xfetarget"},
		{Name: "tty", Type: tree.TypeCharDev, Mode: uint32(0o620 | 1<<26 | 1<<21), ModTime: mt, Device: 0x0501},
		{Name: "unreadable", Type: tree.TypeFile, Mode: 0o000, ModTime: mt, Error: "open: permission denied"},
		{Name: "\u00e9t\u00e9 <&>", Type: tree.TypeFile, Mode: 0o644, ModTime: mt, Size: 14, Content: []ID{hello}},
	} {
		if err := t.Insert(n); err != nil {
			panic(err)
		}
	}
	return t
}

func vecBlobID(b []byte) ID {
	h, err := blake3.NewKeyed(vecIDKey)
	if err != nil {
		panic(err)
	}
	_, _ = h.Write(b)
	var id ID
	h.Sum(id[:0])
	return id
}

func vecSnapshot(treeID ID) *snapshot.Snapshot {
	p := vecParent
	return &snapshot.Snapshot{
		Time: vecTime, Tree: treeID, Paths: []string{"/home/user/docs", "/etc"}, Hostname: "vector-host",
		Username: "user", UID: 1000, GID: 100, Tags: []string{"daily", "vector"}, Parent: &p, Base: &p,
		Kind: snapshot.KindIncremental, Excludes: []string{"*.tmp"}, Program: "bunker vectors",
		Metadata: map[string]string{"source": "vector"},
		Summary: &snapshot.Summary{Start: vecTime.Add(-time.Minute), End: vecTime, Files: 7, Dirs: 2, FilesNew: 1, FilesChanged: 2,
			FilesUnchanged: 4, FilesRead: 3, Errors: 1, BytesRead: 728, TotalBytes: 900, BlobsAdded: 4, BytesAdded: 736, BytesStored: 300},
	}
}

func vecSession() SessionInfo {
	return SessionInfo{Host: "vector-host", PID: 4242, Command: "backup", Started: vecTime.UTC()}
}

func vecPlan(packs []ID) *Plan {
	return &Plan{Created: vecTime.UTC(), Packs: packs, Sessions: []string{vecSessionName}, Bytes: 12345}
}

// vectorFile is what testdata/vectors/vectors.json holds: the inputs and
// expected outputs, for implementations in other languages.
type vectorFile struct {
	Comment     string            `json:"comment"`
	MasterKey   string            `json:"master_key"`
	IDKey       string            `json:"id_key"`
	ChunkerSeed string            `json:"chunker_seed"`
	Password    string            `json:"password"`
	KDF         crypto.KDFParams  `json:"kdf"`
	KEK         string            `json:"kek"`          // argon2id(password, kdf)
	Blobs       []vectorBlob      `json:"blobs"`        // of pack-data.bin
	TreeBlobID  string            `json:"tree_blob_id"` // keyed BLAKE3 of tree-blob.json
	Files       map[string]string `json:"files"`        // file -> unkeyed BLAKE3-256 (its storage name)
	Gear        map[string]string `json:"gear"`         // gear table of chunker_seed: index -> uint64 hex
	Seal        vectorSeal        `json:"seal"`
}

type vectorBlob struct {
	Plaintext string `json:"plaintext_hex"`
	ID        string `json:"id"` // keyed BLAKE3-256 with id_key
	Flag      byte   `json:"flag"`
	Offset    uint32 `json:"offset"`
	Length    uint32 `json:"length"`
}

type vectorSeal struct {
	Key       string `json:"key"`
	AAD       string `json:"aad_hex"`
	Plaintext string `json:"plaintext_hex"`
	Sealed    string `json:"sealed_file"`
}

func mustKey(t testing.TB, secret []byte) *crypto.Key {
	t.Helper()
	k, err := crypto.NewKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorsDir, name))
	if err != nil {
		t.Fatalf("read vector (regenerate with -update-golden only for a deliberate format change): %v", err)
	}
	return b
}

// generateVectors seals every vector object and writes testdata/vectors.
func generateVectors(t *testing.T) {
	master := mustKey(t, vecMasterKey)
	codec, err := pack.NewCodec(master, zstd.SpeedFastest)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	vf := vectorFile{
		Comment:     "Bunker repository format v1 test vectors; see docs/FORMAT.md. Sealed files use random nonces and were generated once.",
		MasterKey:   hex.EncodeToString(vecMasterKey),
		IDKey:       hex.EncodeToString(vecIDKey),
		ChunkerSeed: hex.EncodeToString(vecChunkerSeed),
		Password:    vecPassword,
		KDF:         vecKDF,
		Files:       map[string]string{},
		Gear:        map[string]string{},
	}
	kek, err := vecKDF.Derive(vecPassword)
	if err != nil {
		t.Fatal(err)
	}
	vf.KEK = hex.EncodeToString(kek)

	// Data pack.
	pw := pack.NewWriter(pack.DataBlob, 0)
	for _, b := range vecBlobs() {
		id := vecBlobID(b)
		sealed, _ := codec.SealBlob(nil, nil, pack.DataBlob, id, b)
		pw.Add(pack.DataBlob, id, sealed, len(b))
	}
	dataPack, dataID, dataEntries := pw.Finalize(master)
	files["pack-data.bin"] = dataPack
	for i, b := range vecBlobs() {
		e := dataEntries[i]
		inner, err := master.Open(nil, dataPack[e.Offset:e.Offset+e.Length], append(append([]byte("BLOB"), byte(pack.DataBlob)), e.ID[:]...))
		if err != nil {
			t.Fatal(err)
		}
		vf.Blobs = append(vf.Blobs, vectorBlob{Plaintext: hex.EncodeToString(b), ID: e.ID.String(), Flag: inner[0], Offset: e.Offset, Length: e.Length})
	}

	// Tree blob and tree pack.
	tb, err := vecTree().Encode()
	if err != nil {
		t.Fatal(err)
	}
	files["tree-blob.json"] = tb
	treeID := vecBlobID(tb)
	vf.TreeBlobID = treeID.String()
	tw := pack.NewWriter(pack.TreeBlob, 0)
	sealed, _ := codec.SealBlob(nil, nil, pack.TreeBlob, treeID, tb)
	tw.Add(pack.TreeBlob, treeID, sealed, len(tb))
	treePack, treePackID, treeEntries := tw.Finalize(master)
	files["pack-tree.bin"] = treePack

	// Index file naming both packs.
	f := &index.File{Packs: []ID{dataID, treePackID}, Supersedes: []ID{vecSupersedes}}
	for _, e := range dataEntries {
		f.Entries = append(f.Entries, index.FileEntry{Pack: 0, Entry: e})
	}
	for _, e := range treeEntries {
		f.Entries = append(f.Entries, index.FileEntry{Pack: 1, Entry: e})
	}
	files["index.bin"] = index.EncodeFile(master, f)

	// Config, key, sealed JSON objects.
	cb, err := encodeConfig(master, vecConfig())
	if err != nil {
		t.Fatal(err)
	}
	files["config.bin"] = cb
	files["key-test.bin"] = vecKeyFile(t)
	r := &Repository{key: master}
	for name, o := range map[string]struct {
		t storage.FileType
		v any
	}{
		"snapshot.bin": {storage.SnapshotFile, vecSnapshot(treeID)},
		"session.bin":  {storage.SessionFile, vecSession()},
		"lease.bin":    {storage.MaintFile, vecSession()},
		"plan.bin":     {storage.MaintFile, vecPlan([]ID{dataID})},
	} {
		b, err := r.SealJSON(o.t, o.v)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}

	// A bare AEAD message.
	vf.Seal = vectorSeal{Key: hex.EncodeToString(vecMasterKey), AAD: hex.EncodeToString([]byte("bunker test vector")),
		Plaintext: hex.EncodeToString([]byte("attack at dawn")), Sealed: "sealed.bin"}
	files["sealed.bin"] = master.Seal(nil, []byte("attack at dawn"), []byte("bunker test vector"))

	// Gear table, by the construction of docs/FORMAT.md.
	var gear [2048]byte
	blake3.DeriveKey("bunker chunker gear v1", vecChunkerSeed, gear[:])
	for _, i := range []int{0, 1, 2, 127, 255} {
		vf.Gear[strconv.Itoa(i)] = hex.EncodeToString(reverse(gear[8*i : 8*i+8]))
	}

	if err := os.MkdirAll(vectorsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		vf.Files[name] = pack.Hash(b).String()
		if err := os.WriteFile(filepath.Join(vectorsDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	js, err := json.MarshalIndent(vf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vectorsDir, "vectors.json"), append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d vector files to %s", len(files)+1, vectorsDir)
}

// reverse turns little-endian bytes into the big-endian hex of the uint64.
func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}

// vecKeyFile builds a key object the way newKeyFile does, with fixed
// informational fields and salt.
func vecKeyFile(t *testing.T) []byte {
	kek, err := vecKDF.Derive(vecPassword)
	if err != nil {
		t.Fatal(err)
	}
	hdr := format.NewHeader(format.TypeKey, 0).Bytes()
	kf := KeyFile{Created: vecTime.UTC(), Host: "vector-host", User: "vector-user", KDF: vecKDF,
		Data: mustKey(t, kek).Seal(nil, vecMasterKey, keyAAD(hdr))}
	js, err := json.Marshal(kf)
	if err != nil {
		t.Fatal(err)
	}
	return append(hdr, js...)
}

func loadVectorFile(t *testing.T) vectorFile {
	var vf vectorFile
	if err := json.Unmarshal(readVector(t, "vectors.json"), &vf); err != nil {
		t.Fatal(err)
	}
	return vf
}

func TestVectors(t *testing.T) {
	if *UpdateGolden {
		generateVectors(t)
	}
	vf := loadVectorFile(t)
	if vf.MasterKey != hex.EncodeToString(vecMasterKey) || vf.IDKey != hex.EncodeToString(vecIDKey) || vf.ChunkerSeed != hex.EncodeToString(vecChunkerSeed) {
		t.Fatal("vectors.json keys differ from the fixed inputs of this test")
	}
	master := mustKey(t, vecMasterKey)
	r := &Repository{key: master}

	t.Run("names", func(t *testing.T) {
		// Every file's storage name would be the unkeyed BLAKE3-256 of its bytes.
		for name, want := range vf.Files {
			if got := pack.Hash(readVector(t, name)).String(); got != want {
				t.Errorf("%s: BLAKE3-256 %s, vectors.json says %s", name, got, want)
			}
		}
	})

	t.Run("config", func(t *testing.T) {
		b := readVector(t, "config.bin")
		if !bytes.Equal(b[:8], []byte{'B', 'N', 'K', 'R', 1, 1, 0, 0}) {
			t.Fatalf("config header % x", b[:8])
		}
		c, err := decodeConfig(master, b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c, vecConfig()) {
			t.Fatalf("config decodes to %+v, want %+v", c, vecConfig())
		}
		// The AAD is the header: changing its reserved byte must fail
		// authentication, not just the header check.
		bad := bytes.Clone(b)
		bad[6] = 1
		if _, err := master.Open(nil, bad[8:], bad[:8]); !errors.Is(err, crypto.ErrUnauthenticated) {
			t.Fatalf("config with altered header AAD opened: %v", err)
		}
	})

	t.Run("key", func(t *testing.T) {
		b := readVector(t, "key-test.bin")
		if !bytes.Equal(b[:8], []byte{'B', 'N', 'K', 'R', 1, 2, 0, 0}) {
			t.Fatalf("key header % x", b[:8])
		}
		kf, err := parseKeyFile(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(kf.KDF, vecKDF) || kf.Host != "vector-host" || kf.User != "vector-user" || !kf.Created.Equal(vecTime) {
			t.Fatalf("key file fields %+v", kf)
		}
		kek, err := kf.KDF.Derive(vecPassword)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(kek) != vf.KEK {
			t.Fatalf("argon2id KEK %x, want %s", kek, vf.KEK)
		}
		m, err := kf.open(b[:8], vecPassword)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m, vecMasterKey) {
			t.Fatalf("master key %x", m)
		}
		if _, err := kf.open(b[:8], "wrong"); !errors.Is(err, crypto.ErrUnauthenticated) {
			t.Fatalf("wrong password: %v", err)
		}
	})

	t.Run("key-via-Open", func(t *testing.T) {
		be := mem.New()
		ctx := context.Background()
		must(t, be.Save(ctx, storage.Handle{Type: storage.KeyFile, Name: vf.Files["key-test.bin"]}, readVector(t, "key-test.bin"), storage.SaveOptions{}))
		must(t, be.Save(ctx, storage.Handle{Type: storage.ConfigFile}, readVector(t, "config.bin"), storage.SaveOptions{}))
		rr, err := Open(ctx, be, vecPassword, "")
		if err != nil {
			t.Fatal(err)
		}
		if rr.KeyName() != vf.Files["key-test.bin"] || !reflect.DeepEqual(rr.Config(), *vecConfig()) {
			t.Fatalf("opened %s with config %+v", rr.KeyName(), rr.Config())
		}
		// Blob IDs are keyed BLAKE3-256 with the config's id_key.
		for _, vb := range vf.Blobs {
			pt, _ := hex.DecodeString(vb.Plaintext)
			if got := rr.Hash(pt).String(); got != vb.ID {
				t.Errorf("blob ID of %q is %s, want %s", pt, got, vb.ID)
			}
		}
		if _, err := Open(ctx, be, "wrong", ""); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("wrong password: %v", err)
		}
	})

	t.Run("snapshot", func(t *testing.T) {
		b := readVector(t, "snapshot.bin")
		var sn snapshot.Snapshot
		if err := r.OpenJSON(storage.SnapshotFile, b, &sn); err != nil {
			t.Fatal(err)
		}
		want := vecSnapshot(vecBlobID(readVector(t, "tree-blob.json")))
		if !sn.Time.Equal(want.Time) {
			t.Fatalf("time %v, want %v", sn.Time, want.Time)
		}
		if _, off := sn.Time.Zone(); off != 7200 {
			t.Fatalf("time zone offset %d lost", off)
		}
		sn.Time, sn.Summary.Start, sn.Summary.End = want.Time, want.Summary.Start, want.Summary.End
		if !reflect.DeepEqual(&sn, want) {
			t.Fatalf("snapshot decodes to %+v, want %+v", sn, want)
		}
		if err := r.OpenJSON(storage.SessionFile, b, &sn); !errors.Is(err, format.ErrCorrupt) {
			t.Fatalf("snapshot opened as a session: %v", err)
		}
	})

	t.Run("session-plan-lease", func(t *testing.T) {
		var s SessionInfo
		must(t, r.OpenJSON(storage.SessionFile, readVector(t, "session.bin"), &s))
		if !reflect.DeepEqual(s, vecSession()) {
			t.Fatalf("session %+v", s)
		}
		var l SessionInfo
		must(t, r.OpenJSON(storage.MaintFile, readVector(t, "lease.bin"), &l))
		if !reflect.DeepEqual(l, vecSession()) {
			t.Fatalf("lease %+v", l)
		}
		var p Plan
		must(t, r.OpenJSON(storage.MaintFile, readVector(t, "plan.bin"), &p))
		dataID := pack.Hash(readVector(t, "pack-data.bin"))
		if !reflect.DeepEqual(&p, vecPlan([]ID{dataID})) {
			t.Fatalf("plan %+v", p)
		}
	})

	t.Run("seal", func(t *testing.T) {
		got, err := master.Open(nil, readVector(t, vf.Seal.Sealed), []byte("bunker test vector"))
		if err != nil || string(got) != "attack at dawn" {
			t.Fatalf("sealed vector opens to %q, %v", got, err)
		}
	})

	t.Run("gear", func(t *testing.T) {
		// docs/FORMAT.md and the chunker's doc.go quote this value for
		// the all-zero seed.
		var zero [2048]byte
		blake3.DeriveKey("bunker chunker gear v1", make([]byte, 32), zero[:])
		if got := hex.EncodeToString(reverse(zero[:8])); got != "5f26d7f9cd511e7b" {
			t.Fatalf("gear[0] of the zero seed = %s", got)
		}
		var gear [2048]byte
		blake3.DeriveKey("bunker chunker gear v1", vecChunkerSeed, gear[:])
		for i, want := range vf.Gear {
			n, err := strconv.Atoi(i)
			if err != nil || n < 0 || n > 255 {
				t.Fatalf("gear index %q", i)
			}
			if got := hex.EncodeToString(reverse(gear[8*n : 8*n+8])); got != want {
				t.Errorf("gear[%d] = %s, want %s", n, got, want)
			}
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
