package postgres

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

// walSnap is a WAL archive snapshot's info as wal-push records it.
func walSnap(id, sysid string, names ...string) source.SnapshotInfo {
	md := map[string]string{"source": "postgres", "type": "wal", "system_identifier": sysid, "timeline": "1",
		"wal_first": names[0], "wal_last": names[len(names)-1], "wal_files": strings.Join(names, ",")}
	return source.SnapshotInfo{ID: id, Kind: "continuous", Time: time.Unix(0, 0), Metadata: md}
}

func refs(files []WALFile) []string {
	var out []string
	for _, f := range files {
		r := f.Ref.(ArchiveRef)
		out = append(out, f.Name+"@"+r.Snapshot.ID+"/"+r.Name+"/"+r.System)
	}
	return out
}

func TestArchiveFilesAndFindWAL(t *testing.T) {
	bad := walSnap("bad", "7", "000000010000000000000009")
	bad.Metadata["wal_files"] = "000000010000000000000009,../../etc/shadow"
	all := []source.SnapshotInfo{
		walSnap("a", "7", "000000010000000000000001", "000000010000000000000002.partial"),
		{ID: "logical", Metadata: map[string]string{"source": "postgres", "type": "logical"}},
		{ID: "mysql", Metadata: map[string]string{"source": "mysql", "type": "wal", "wal_files": "000000010000000000000001"}},
		walSnap("other", "8", "000000010000000000000001"),
		bad,
		walSnap("b", "7", "000000010000000000000002"),
	}
	got := refs(ArchiveFiles(all, "7"))
	want := []string{"000000010000000000000001@a/000000010000000000000001/7", "000000010000000000000002.partial@a/000000010000000000000002.partial/7",
		"000000010000000000000002@b/000000010000000000000002/7"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if n := len(ArchiveFiles(all, "")); n != 4 {
		t.Fatalf("all systems: %d files", n)
	}
	files := ArchiveFiles(all, "7")
	for name, want := range map[string]string{
		"000000010000000000000001": "a/000000010000000000000001",
		"000000010000000000000002": "b/000000010000000000000002",
	} {
		f, ok := FindWAL(files, name)
		if r := f.Ref.(ArchiveRef); !ok || r.Snapshot.ID+"/"+r.Name != want {
			t.Errorf("FindWAL %s = %v %v, want %s", name, f, ok, want)
		}
	}
	f, ok := FindWAL(files[:2], "000000010000000000000002")
	if !ok || f.Ref.(ArchiveRef).Name != "000000010000000000000002.partial" {
		t.Errorf("partial stand-in: %v %v", f, ok)
	}
	if _, ok := FindWAL(files, "000000010000000000000009"); ok {
		t.Error("found a file of an unreadable snapshot")
	}
}

func TestRecoveryWAL(t *testing.T) {
	all := []source.SnapshotInfo{
		walSnap("a", "7", "000000010000000000000001", "000000010000000000000002"),
		walSnap("b", "7", "000000010000000000000004.partial"),
		walSnap("c", "8", "000000010000000000000003"), // another system's
	}
	m := &PhysicalManifestData{SystemIdentifier: "7", StartWALFile: "000000010000000000000002", WALMethod: "fetch"}
	files, err := RecoveryWAL(all, m)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"000000010000000000000002@a/000000010000000000000002/7", "000000010000000000000004@b/000000010000000000000004.partial/7"}
	if got := refs(files); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	m.WALMethod = "none"
	if _, err := RecoveryWAL(all, m); err == nil || !strings.Contains(err.Error(), "000000010000000000000003") {
		t.Fatalf("a gap (the other system's segment does not fill it): %v", err)
	}
}

// fileTree is a source.Tree of files in memory.
type fileTree map[string]string

func (t fileTree) Stat(ctx context.Context, p string) (source.Entry, error) {
	return source.Entry{}, errors.ErrUnsupported
}
func (t fileTree) List(ctx context.Context, p string) ([]source.Entry, error) {
	return nil, errors.ErrUnsupported
}
func (t fileTree) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	b, ok := t[p]
	if !ok {
		return nil, os.ErrNotExist
	}
	return io.NopCloser(strings.NewReader(b)), nil
}

func TestWriteWALFile(t *testing.T) {
	dir := t.TempDir()
	tree := fileTree{"wal/000000010000000000000004.partial": "partial bytes"}
	ref := ArchiveRef{Snapshot: source.SnapshotInfo{ID: "0123456789abcdef"}, Name: "000000010000000000000004.partial"}
	dest := filepath.Join(dir, "000000010000000000000004")
	if err := WriteWALFile(context.Background(), tree, ref, dest, -1, -1); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "partial bytes" {
		t.Fatalf("%q, %v", b, err)
	}
	ref.Name = "000000010000000000000005"
	err := WriteWALFile(context.Background(), tree, ref, filepath.Join(dir, "x"), -1, -1)
	if err == nil || !strings.Contains(err.Error(), "WAL 000000010000000000000005 in snapshot 01234567") {
		t.Fatalf("missing file: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left behind: %v", ents)
	}
}

func TestFetchAndListArchive(t *testing.T) {
	ctx := context.Background()
	all := []source.SnapshotInfo{
		walSnap("a", "7", "000000010000000000000002", "000000010000000000000003.partial"),
		walSnap("b", "8", "000000010000000000000001"),
	}
	trees := func(id string) source.Tree {
		return map[string]fileTree{
			"a": {"wal/000000010000000000000002": "two", "wal/000000010000000000000003.partial": "three-partial"},
			"b": {"wal/000000010000000000000001": "other"},
		}[id]
	}
	dir := t.TempDir()
	if err := FetchWAL(ctx, all, trees, "000000010000000000000003", filepath.Join(dir, "x"), "7"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "x")); string(b) != "three-partial" {
		t.Fatalf("fetched %q", b)
	}
	if err := FetchWAL(ctx, all, trees, "000000010000000000000001", filepath.Join(dir, "y"), "7"); err == nil ||
		!strings.Contains(err.Error(), "WAL file 000000010000000000000001 of system 7 is not in the archive") {
		t.Fatalf("another system's file: %v", err)
	}
	m := &PhysicalManifestData{SystemIdentifier: "7", StartWALFile: "000000010000000000000002", WALMethod: "none"}
	walDir := filepath.Join(dir, "wal")
	n, err := FetchRecoveryWAL(ctx, all, trees, m, walDir, -1, -1)
	if err != nil || n != 2 {
		t.Fatalf("%d %v", n, err)
	}
	if b, _ := os.ReadFile(filepath.Join(walDir, "000000010000000000000003")); string(b) != "three-partial" {
		t.Fatalf("recovery copy of the partial: %q", b)
	}
	var got []string
	for _, f := range ListArchive(all, "") {
		got = append(got, f.System+" "+f.Name+" "+f.Kind+" "+f.Snapshot.ID)
	}
	want := []string{"7 000000010000000000000002 segment a", "7 000000010000000000000003.partial partial a", "8 000000010000000000000001 segment b"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("list %q\nwant %q", got, want)
	}
	if id, err := LocalSystemID("", filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "--system-id") {
		t.Fatalf("%q %v", id, err)
	}
}

func TestPhysicalParent(t *testing.T) {
	full := baseSnap("f1", "7", "000000010000000000000002")
	inc := baseSnap("i1", "7", "000000010000000000000004")
	inc.Kind = KindIncremental
	bad := baseSnap("bad", "7", "junk")
	for _, c := range []struct {
		name               string
		earlier            []source.SnapshotInfo
		diff               bool
		parent, base, kind string
	}{
		{"first", nil, false, "", "", KindFull},
		{"only logical", []source.SnapshotInfo{{ID: "l", Kind: KindFull, Metadata: map[string]string{"source": "postgres", "type": "logical"}}}, false, "", "", KindFull},
		{"incremental", []source.SnapshotInfo{full, inc}, false, "i1", "f1", KindIncremental},
		{"differential", []source.SnapshotInfo{full, inc}, true, "f1", "f1", KindDifferential},
		{"unreadable passed over", []source.SnapshotInfo{full, inc, bad}, false, "i1", "f1", KindIncremental},
	} {
		p, b, k := PhysicalParent(c.earlier, c.diff)
		if p != c.parent || b != c.base || k != c.kind {
			t.Errorf("%s: %q %q %q, want %q %q %q", c.name, p, b, k, c.parent, c.base, c.kind)
		}
	}
}
