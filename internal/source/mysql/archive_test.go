package mysql

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

// archiveSnap is an archive snapshot of /mysql/db:3306/binlog from host h.
func archiveSnap(id string, until time.Time, files ...BinlogFile) source.SnapshotInfo {
	md := ArchiveMeta{Flavour: MariaDB, ServerVersion: "10.11", Files: files, Until: until}.Map()
	md["source"] = SourceName
	return source.SnapshotInfo{ID: id, Kind: "continuous", Host: "h", Paths: []string{"/mysql/db:3306/binlog"}, Metadata: md}
}

func backupSnap(id, file string) source.SnapshotInfo {
	md := BackupMeta{Flavour: MariaDB, Position: BinlogPos{File: file, Pos: 4}}.Map()
	if file == "" {
		md = BackupMeta{Flavour: MariaDB}.Map()
	}
	md["source"] = SourceName
	return source.SnapshotInfo{ID: id, Kind: "full", Host: "h", Paths: []string{"/mysql/db:3306"}, Metadata: md}
}

func bf(name string, size int64, complete bool) BinlogFile {
	return BinlogFile{Name: name, Size: size, Complete: complete}
}

func expiredIDs(ex source.Expiry) string {
	var ids []string
	for _, e := range ex.Expired {
		ids = append(ids, e.ID)
	}
	return strings.Join(ids, ",")
}

func TestLogArchiveExpire(t *testing.T) {
	t0 := time.Unix(1000, 0).UTC()
	archive := []source.SnapshotInfo{
		archiveSnap("a1", t0, bf("binlog.000001", 100, true)),
		archiveSnap("a2", t0.Add(time.Second), bf("binlog.000002", 50, false)), // superseded by a3's copy
		archiveSnap("a3", t0.Add(2*time.Second), bf("binlog.000002", 80, true), bf("binlog.000003", 10, false)),
		archiveSnap("a4", t0.Add(3*time.Second), bf("binlog.000003", 20, false)),
	}
	la := LogArchive{}
	if la.Name() != "binlog archive" {
		t.Errorf("Name() = %q", la.Name())
	}

	// No backup: everything kept, with a note.
	ex := la.Expire(archive)
	if len(ex.Expired) != 0 || ex.Archives != 4 || len(ex.Notes) != 1 || !strings.Contains(ex.Notes[0], "no backup records a binlog position") {
		t.Errorf("without a backup: %+v", ex)
	}

	// The oldest backup starts in binlog.000002.
	all := append([]source.SnapshotInfo{backupSnap("b1", "binlog.000002"), backupSnap("b2", "binlog.000003"), backupSnap("b0", "")}, archive...)
	ex = la.Expire(all)
	if got := expiredIDs(ex); got != "a1,a2" || ex.Archives != 4 || len(ex.Notes) != 0 {
		t.Errorf("Expire = %q %+v, want a1,a2", got, ex)
	}
	if ex.Expired[0].Why != "(/mysql/db:3306/binlog, host h)" {
		t.Errorf("Why = %q", ex.Expired[0].Why)
	}

	// Another host's archive of the same path is its own.
	other := archiveSnap("x1", t0, bf("binlog.000001", 100, true))
	other.Host = "other"
	ex = la.Expire(append(all, other))
	if got := expiredIDs(ex); got != "a1,a2" || ex.Archives != 5 || len(ex.Notes) != 1 {
		t.Errorf("with another host's archive: %q %+v", got, ex)
	}
}

func TestLogArchiveExpireHostile(t *testing.T) {
	t0 := time.Unix(1000, 0).UTC()
	good := []source.SnapshotInfo{
		backupSnap("b1", "binlog.000002"),
		archiveSnap("a1", t0, bf("binlog.000001", 100, true)),
		archiveSnap("a2", t0.Add(time.Second), bf("binlog.000002", 80, true)),
	}
	if got := expiredIDs(LogArchive{}.Expire(good)); got != "a1" {
		t.Fatalf("baseline: %q", got)
	}
	clone := func() []source.SnapshotInfo {
		out := slices.Clone(good)
		for i := range out {
			md := map[string]string{}
			for k, v := range out[i].Metadata {
				md[k] = v
			}
			out[i].Metadata = md
		}
		return out
	}

	// An archive snapshot that cannot be read is never expired.
	for key, val := range map[string]string{"binlog_index": "garbage", "until": "soon"} {
		all := clone()
		all[1].Metadata[key] = val
		ex := LogArchive{}.Expire(all)
		if len(ex.Expired) != 0 || len(ex.Notes) != 1 || !strings.Contains(ex.Notes[0], "a1") || !strings.Contains(ex.Notes[0], key) {
			t.Errorf("%s=%q: %+v", key, val, ex)
		}
	}
	// A backup whose position cannot be read may still need everything.
	for key, val := range map[string]string{"binlog_file": "../x", "binlog_pos": "x", "physical": "?"} {
		all := clone()
		all[0].Metadata[key] = val
		ex := LogArchive{}.Expire(all)
		if len(ex.Expired) != 0 || len(ex.Notes) != 1 || !strings.Contains(ex.Notes[0], "all binlogs kept") {
			t.Errorf("backup %s=%q: %+v", key, val, ex)
		}
	}
	// A snapshot with two paths, or of another source, is not ours.
	all := clone()
	all[1].Paths = []string{"/a", "/b"}
	all = append(all, source.SnapshotInfo{ID: "p1", Kind: "continuous", Paths: []string{"/mysql/db:3306/binlog"}, Host: "h",
		Metadata: map[string]string{"source": "postgres"}})
	if ex := (LogArchive{}).Expire(all); len(ex.Expired) != 0 || ex.Archives != 1 {
		t.Errorf("foreign snapshots: %+v", ex)
	}
}

func TestFindArchive(t *testing.T) {
	t0 := time.Unix(1000, 0).UTC()
	all := []source.SnapshotInfo{
		backupSnap("b1", "binlog.000001"),
		archiveSnap("0123456789a1", t0.Add(5*time.Second), bf("binlog.000001", 100, true), bf("binlog.000002", 5, false)),
		archiveSnap("0123456789a2", t0, bf("binlog.000002", 9, false)),
	}
	p, h := ArchivePath("db:3306"), "h"
	if p != "/mysql/db:3306/binlog" || BackupPath("/run/x.sock") != "/mysql/run/x.sock" {
		t.Errorf("paths %q %q", p, BackupPath("/run/x.sock"))
	}
	if got := ArchiveServers(all); len(got) != 1 || got[0] != (ArchiveServer{p, h}) {
		t.Errorf("ArchiveServers = %v", got)
	}
	files, err := Archived(all, p, h)
	if err != nil || len(files) != 3 || files[0].Snapshot != "01234567" || files[0].SnapshotID != "0123456789a1" {
		t.Errorf("Archived = %+v %v", files, err)
	}
	arch, err := FindArchive(all, p, h)
	if err != nil || len(arch.Files) != 2 || arch.Files[1].Size != 9 || !arch.Until.Equal(t0.Add(5*time.Second)) {
		t.Errorf("FindArchive = %+v %v", arch, err)
	}
	if _, err := FindArchive(all, p, "elsewhere"); err == nil || !strings.Contains(err.Error(), "no binlogs are archived") {
		t.Errorf("another host: %v", err)
	}
	all[2].Metadata["binlog_index"] = "x"
	if _, err := FindArchive(all, p, h); err == nil || !strings.Contains(err.Error(), "01234567") {
		t.Errorf("unreadable snapshot: %v", err)
	}
}

func TestCheckBackup(t *testing.T) {
	b := backupSnap("0123456789", "binlog.000001")
	if err := CheckBackup(&b); err != nil {
		t.Error(err)
	}
	a := archiveSnap("0123456789", time.Time{})
	if err := CheckBackup(&a); err == nil || !strings.Contains(err.Error(), "binlog archive") {
		t.Errorf("archive: %v", err)
	}
	b.Metadata = map[string]string{"source": "postgres"}
	if err := CheckBackup(&b); err == nil || !strings.Contains(err.Error(), `"postgres"`) {
		t.Errorf("postgres: %v", err)
	}
}

func TestNewTarget(t *testing.T) {
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	if tg, err := NewTarget(time.Time{}, ""); tg != nil || err != nil {
		t.Errorf("none: %v %v", tg, err)
	}
	if tg, err := NewTarget(at, ""); err != nil || !tg.Time.Equal(at) || !tg.Position.IsZero() {
		t.Errorf("time: %v %v", tg, err)
	}
	if tg, err := NewTarget(time.Time{}, "binlog.000002:77"); err != nil || tg.Position != (BinlogPos{"binlog.000002", 77}) {
		t.Errorf("position: %v %v", tg, err)
	}
	if _, err := NewTarget(at, "binlog.000002:77"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both: %v", err)
	}
	if _, err := NewTarget(time.Time{}, "../x:4"); err == nil {
		t.Error("bad position accepted")
	}
}

func TestRollForwardSteps(t *testing.T) {
	if s := (&Manifest{}).RollForwardSteps(); s != nil {
		t.Errorf("without a position: %q", s)
	}
	m := &Manifest{Server: "db:3306", BinlogFile: "binlog.000003", BinlogPos: 900, GTID: "0-1-5"}
	s := strings.Join(m.RollForwardSteps(), "\n")
	for _, want := range []string{"binlog.000003:900 (GTID 0-1-5)", "--path /mysql/db:3306/binlog", "--start-position=900", "binlog.000003 NEXT..."} {
		if !strings.Contains(s, want) {
			t.Errorf("steps lack %q:\n%s", want, s)
		}
	}
}
