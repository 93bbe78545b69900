package mongodb

import (
	"context"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/source"
)

func TestBackupMetaRoundTrip(t *testing.T) {
	m := BackupMeta{ServerVersion: "7.0.1", Topology: "replset", Hosts: []string{"a:1", "b:2"}, Databases: []string{"a", "b"},
		Collections: 3, Oplog: true, OplogStart: Timestamp{T: 5, I: 1}, OplogEnd: Timestamp{T: 9, I: 3}, Users: true}
	want := map[string]string{"server_version": "7.0.1", "topology": "replset", "hosts": "a:1,b:2", "databases": "a,b",
		"collections": "3", "oplog_start": "5:1", "oplog_end": "9:3", "users": "true"}
	if md := m.Map(); !maps.Equal(md, want) {
		t.Errorf("Map() = %v, want %v", md, want)
	}
	if got, err := ParseBackupMeta(want); err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("round trip: %+v %v", got, err)
	}
	// mongodump: tool, no databases or collections; no oplog.
	m = BackupMeta{ServerVersion: "7.0.1", Topology: "standalone", Hosts: []string{"a:1"}, Tool: "mongodump"}
	want = map[string]string{"server_version": "7.0.1", "topology": "standalone", "hosts": "a:1", "tool": "mongodump"}
	if md := m.Map(); !maps.Equal(md, want) {
		t.Errorf("Map() = %v, want %v", md, want)
	}
	if got, err := ParseBackupMeta(want); err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("round trip: %+v %v", got, err)
	}
}

func TestBackupMetaHostile(t *testing.T) {
	base := BackupMeta{Oplog: true, OplogStart: Timestamp{T: 5}, OplogEnd: Timestamp{T: 9}}.Map()
	for key, val := range map[string]string{"oplog_start": "x", "oplog_end": "-1", "collections": "many", "users": "perhaps"} {
		md := maps.Clone(base)
		md[key] = val
		if _, err := ParseBackupMeta(md); err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), val) {
			t.Errorf("%s=%q: error %v does not name the key and value", key, val, err)
		}
	}
	for _, drop := range []string{"oplog_start", "oplog_end"} {
		md := maps.Clone(base)
		delete(md, drop)
		if _, err := ParseBackupMeta(md); err == nil {
			t.Errorf("without %s: accepted", drop)
		}
	}
	md := maps.Clone(base)
	md["oplog_end"] = "4:0"
	if _, err := ParseBackupMeta(md); err == nil {
		t.Error("oplog_end before oplog_start accepted")
	}
}

func FuzzParseBackupMeta(f *testing.F) {
	f.Add("5:1", "9:3", "3", "true", "a,b")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, start, end, colls, users, dbs string) {
		md := map[string]string{"oplog_start": start, "oplog_end": end, "collections": colls, "users": users, "databases": dbs}
		m, err := ParseBackupMeta(md)
		if err != nil {
			return
		}
		again, err := ParseBackupMeta(m.Map())
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip of %v: %+v %v, want %+v", md, again, err, m)
		}
	})
}

func FuzzParseChunkInfo(f *testing.F) {
	f.Add("4:1", "9:1", "3:1", "12")
	f.Add("x", "", "", "")
	f.Fuzz(func(t *testing.T, start, end, after, entries string) {
		md := map[string]string{"oplog_start": start, "oplog_end": end, "oplog_after": after, "oplog_entries": entries}
		ci, err := ParseChunkInfo("x", md)
		if err != nil {
			return
		}
		if ci.End.Before(ci.Start) || ci.After != nil && !ci.After.Before(ci.Start) {
			t.Fatalf("inconsistent range accepted: %+v", ci)
		}
		again, err := ParseChunkInfo("x", ci.Map())
		if err != nil || again.Start != ci.Start || again.End != ci.End {
			t.Fatalf("round trip of %v: %+v %v", md, again, err)
		}
	})
}

// snap is a snapshot of the deployment /mongodb/a:1.
func snap(id, src string, md map[string]string) source.SnapshotInfo {
	md = maps.Clone(md)
	md["source"] = src
	kind := "full"
	if src == OplogSourceName {
		kind = "continuous"
	}
	return source.SnapshotInfo{ID: id, Kind: kind, Host: "h", Paths: []string{"/mongodb/a:1"}, Metadata: md}
}

func chunkSnap(id string, start, end uint32) source.SnapshotInfo {
	ci := ChunkInfo{Start: ts(start), End: ts(end), Topology: "replset", Hosts: []string{"a:1"}}
	return snap(id, OplogSourceName, ci.Map())
}

func backupSnap(id string, end uint32) source.SnapshotInfo {
	m := BackupMeta{Topology: "replset", Hosts: []string{"a:1"}}
	if end != 0 {
		m.Oplog, m.OplogStart, m.OplogEnd = true, ts(end-1), ts(end)
	}
	return snap(id, SourceName, m.Map())
}

func expiredIDs(ex source.Expiry) string {
	var ids []string
	for _, e := range ex.Expired {
		ids = append(ids, e.ID)
	}
	return strings.Join(ids, ",")
}

func TestLogArchiveExpire(t *testing.T) {
	chunks := []source.SnapshotInfo{chunkSnap("c1", 1, 10), chunkSnap("c2", 11, 20), chunkSnap("c3", 21, 30)}
	la := LogArchive{}
	if la.Name() != "oplog archive" {
		t.Errorf("Name() = %q", la.Name())
	}
	if ex := la.Expire(chunks); len(ex.Expired) != 0 || ex.Archives != 3 {
		t.Errorf("without a backup: %+v", ex)
	}
	all := append([]source.SnapshotInfo{backupSnap("b1", 20), backupSnap("b2", 25), backupSnap("b0", 0)}, chunks...)
	ex := la.Expire(all)
	if got := expiredIDs(ex); got != "c1,c2" || ex.Archives != 3 || len(ex.Notes) != 0 {
		t.Errorf("Expire = %q %+v", got, ex)
	}
	if ex.Expired[0].Why != "(oplog 1:1..10:1)" {
		t.Errorf("Why = %q", ex.Expired[0].Why)
	}
	// Another deployment's backup does not expire these.
	other := backupSnap("x", 30)
	other.Paths = []string{"/mongodb/b:1"}
	if got := expiredIDs(la.Expire(append(chunks, other))); got != "" {
		t.Errorf("another deployment's backup expired %q", got)
	}
}

func TestLogArchiveExpireHostile(t *testing.T) {
	all := []source.SnapshotInfo{backupSnap("b1", 20), chunkSnap("c1", 1, 10), chunkSnap("c2", 11, 20)}
	// An unreadable chunk is kept, and counted.
	bad := slices.Clone(all)
	bad[1] = snap("c1", OplogSourceName, map[string]string{"oplog_start": "soon", "oplog_end": "10:1"})
	ex := LogArchive{}.Expire(bad)
	if got := expiredIDs(ex); got != "c2" || ex.Archives != 2 || len(ex.Notes) != 1 || !strings.Contains(ex.Notes[0], "soon") {
		t.Errorf("unreadable chunk: %q %+v", got, ex)
	}
	// A backup whose oplog position cannot be read keeps the archive.
	bad = slices.Clone(all)
	bad[0] = snap("b1", SourceName, map[string]string{"oplog_start": "1:1", "oplog_end": "twenty"})
	ex = LogArchive{}.Expire(bad)
	if len(ex.Expired) != 0 || len(ex.Notes) != 1 || !strings.Contains(ex.Notes[0], "twenty") {
		t.Errorf("unreadable backup: %+v", ex)
	}
}

func TestArchiveResumeAndChunks(t *testing.T) {
	paths := []string{"/mongodb/a:1"}
	all := []source.SnapshotInfo{backupSnap("b1", 20), backupSnap("b2", 35), chunkSnap("c1", 1, 10), chunkSnap("c2", 11, 30),
		snap("bad", OplogSourceName, map[string]string{"oplog_end": "99:1"})}
	ce, be := ArchiveResume(all, paths)
	if ce == nil || *ce != ts(30) || be == nil || *be != ts(35) {
		t.Errorf("ArchiveResume = %v %v", ce, be)
	}
	if ce, be := ArchiveResume(all, []string{"/mongodb/b:1"}); ce != nil || be != nil {
		t.Errorf("another deployment: %v %v", ce, be)
	}
	chunks, notes := ArchivedChunks(all, paths)
	if len(chunks) != 2 || chunks[1].ID != "c2" || chunks[1].Topology != "replset" || len(notes) != 1 || !strings.Contains(notes[0], "bad") {
		t.Errorf("ArchivedChunks = %+v %q", chunks, notes)
	}
	info := &BackupInfo{OplogStart: "19:1", OplogEnd: "20:1"}
	if err := PlanPointInTime("b1", info, ts(25), chunks); err != nil {
		t.Errorf("PlanPointInTime: %v", err)
	}
	for _, tc := range []struct {
		info  *BackupInfo
		limit Timestamp
		want  string
	}{
		{&BackupInfo{}, ts(25), "no oplog position"},
		{info, ts(20), "not after the end"},
		{info, ts(31), "does not cover"},
	} {
		if err := PlanPointInTime("b1", tc.info, tc.limit, chunks); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PlanPointInTime(%+v, %v) = %v, want %q", tc.info, tc.limit, err, tc.want)
		}
	}
}

// mapTree is a source.Tree of files held in memory.
type mapTree map[string]string

func (m mapTree) Stat(ctx context.Context, p string) (source.Entry, error) {
	return source.Entry{}, fs.ErrNotExist
}

func (m mapTree) List(ctx context.Context, dir string) ([]source.Entry, error) {
	seen := map[string]source.Entry{}
	for p, c := range m {
		rel, ok := strings.CutPrefix(p, dir+"/")
		if !ok {
			continue
		}
		name, rest, isDir := strings.Cut(rel, "/")
		if isDir || rest != "" {
			seen[name] = source.Entry{Name: name, Type: source.TypeDir}
		} else {
			seen[name] = source.Entry{Name: name, Type: source.TypeFile, Size: int64(len(c))}
		}
	}
	var out []source.Entry
	for _, e := range seen {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (m mapTree) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	c, ok := m[path.Clean(p)]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return io.NopCloser(strings.NewReader(c)), nil
}

func TestRestoreToDir(t *testing.T) {
	ctx := context.Background()
	tree := mapTree{"mongodb/backup.json": "{}", "mongodb/shop/items.bson": "data", "mongodb/shop/items.metadata.json": "{}"}
	dir := filepath.Join(t.TempDir(), "out")
	files, n, err := RestoreToDir(ctx, tree, dir)
	if err != nil || files != 3 || n != 8 {
		t.Fatalf("RestoreToDir = %d %d %v", files, n, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "shop", "items.bson")); err != nil || string(b) != "data" {
		t.Errorf("items.bson: %q %v", b, err)
	}
	// Files already there are not overwritten.
	if _, _, err := RestoreToDir(ctx, tree, dir); err == nil {
		t.Error("second restore into the same directory succeeded")
	}
	// A link planted in the target is not followed.
	dir2, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir2, "shop")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := RestoreToDir(ctx, tree, dir2); err == nil {
		t.Error("restore through a planted link succeeded")
	}
	if es, _ := os.ReadDir(outside); len(es) != 0 {
		t.Errorf("written outside the target: %v", es)
	}
	// Names from the snapshot cannot climb out.
	if _, _, err := RestoreToDir(ctx, mapTree{"mongodb/..": "x"}, t.TempDir()); err == nil {
		t.Error("a name .. was accepted")
	}
}
