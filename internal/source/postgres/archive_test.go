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
