package postgres

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

func walFiles(t *testing.T, names ...string) []WALFile {
	t.Helper()
	var out []WALFile
	for _, n := range names {
		w, err := ParseWALName(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, WALFile{WALName: w})
	}
	return out
}

func gapStrings(gaps []WALGap) []string {
	var out []string
	for _, g := range gaps {
		out = append(out, g.String())
	}
	return out
}

func TestAnalyzeArchive(t *testing.T) {
	for _, c := range []struct {
		name      string
		files     []string
		segSize   uint64
		first     string
		last      string
		timelines []uint32
		segments  int
		gaps      []string
	}{
		{name: "empty"},
		{name: "continuous", files: []string{"000000010000000000000003", "000000010000000000000001", "000000010000000000000002"},
			first: "000000010000000000000001", last: "000000010000000000000003", timelines: []uint32{1}, segments: 3},
		{name: "one missing", files: []string{"000000010000000000000001", "000000010000000000000003"},
			first: "000000010000000000000001", last: "000000010000000000000003", timelines: []uint32{1}, segments: 2,
			gaps: []string{"000000010000000000000002 missing"}},
		{name: "two gaps", files: []string{"000000010000000000000001", "000000010000000000000005", "000000010000000000000006", "000000010000000000000008"},
			first: "000000010000000000000001", last: "000000010000000000000008", timelines: []uint32{1}, segments: 4,
			gaps: []string{"000000010000000000000002..000000010000000000000004 missing (3 segments)", "000000010000000000000007 missing"}},
		{name: "across a log boundary", files: []string{"0000000100000000000000FE", "0000000100000001000000000"[:24]},
			first: "0000000100000000000000FE", last: "000000010000000100000000", timelines: []uint32{1}, segments: 2,
			gaps: []string{"0000000100000000000000FF missing"}},
		{name: "timeline switch continues the numbering", files: []string{"000000010000000000000001", "000000010000000000000002",
			"00000002.history", "000000020000000000000002", "000000020000000000000003"},
			first: "000000010000000000000001", last: "000000020000000000000003", timelines: []uint32{1, 2}, segments: 3},
		{name: "gap after a timeline switch is on the new timeline", files: []string{"000000010000000000000001", "000000020000000000000002",
			"000000020000000000000005"},
			first: "000000010000000000000001", last: "000000020000000000000005", timelines: []uint32{1, 2}, segments: 3,
			gaps: []string{"000000020000000000000003..000000020000000000000004 missing (2 segments)"}},
		{name: "a partial stands in", files: []string{"000000010000000000000001", "000000010000000000000002.partial"},
			first: "000000010000000000000001", last: "000000010000000000000002", timelines: []uint32{1}, segments: 2},
		{name: "64 MiB segments", segSize: 64 << 20, files: []string{"00000001000000000000003F", "000000010000000100000001"},
			first: "00000001000000000000003F", last: "000000010000000100000001", timelines: []uint32{1}, segments: 2,
			gaps: []string{"000000010000000100000000 missing"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := AnalyzeArchive(walFiles(t, c.files...), c.segSize)
			if s.First != c.first || s.Last != c.last || s.Segments != c.segments || !reflect.DeepEqual(s.Timelines, c.timelines) {
				t.Errorf("first %q last %q segments %d timelines %v; want %q %q %d %v", s.First, s.Last, s.Segments, s.Timelines, c.first, c.last, c.segments, c.timelines)
			}
			if got := gapStrings(s.Gaps); !reflect.DeepEqual(got, c.gaps) {
				t.Errorf("gaps %q, want %q", got, c.gaps)
			}
			if s.Continuous() != (len(c.gaps) == 0) {
				t.Errorf("continuous %v with gaps %q", s.Continuous(), c.gaps)
			}
		})
	}
}

func TestContinuousFrom(t *testing.T) {
	s := AnalyzeArchive(walFiles(t, "000000010000000000000001", "000000010000000000000002", "000000010000000000000004", "000000010000000000000005"), 0)
	for name, want := range map[string]bool{
		"000000010000000000000001": false, // the gap at 3 is ahead
		"000000010000000000000003": false, // missing itself
		"000000010000000000000004": true,
		"000000010000000000000005": true,
		"000000010000000000000006": false, // not archived
	} {
		if got := s.ContinuousFrom(name); got != want {
			t.Errorf("ContinuousFrom(%s) = %v, want %v", name, got, want)
		}
	}
}

func TestReport(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2026, 12, 7, 10, min, 0, 0, time.UTC) }
	base := func(id string, min int, start, method string) source.SnapshotInfo {
		s := baseSnap(id, "7", start)
		s.Time, s.Host = at(min), "db1"
		s.Metadata["server"] = "db1:5432"
		s.Metadata["wal_method"] = method
		return s
	}
	wal := func(id string, min int, names ...string) source.SnapshotInfo {
		s := walSnap(id, "7", names...)
		s.Time = at(min)
		return s
	}
	logical := source.SnapshotInfo{ID: "lg", Time: at(3), Host: "db1", Metadata: map[string]string{"source": "postgres", "type": "logical",
		"server": "db1:5432", "databases": "shop"}}
	other := source.SnapshotInfo{ID: "lo", Time: at(3), Host: "db2", Metadata: map[string]string{"source": "postgres", "type": "logical",
		"server": "db2:5432", "databases": "crm"}}
	all := []source.SnapshotInfo{
		base("b1", 1, "000000010000000000000002", "none"),
		wal("w1", 2, "000000010000000000000002"),
		// 3 is missing: b1 cannot reach the end of the archive.
		base("b2", 5, "000000010000000000000004", "none"),
		wal("w4", 6, "000000010000000000000004", "000000010000000000000005"),
		wal("w6", 9, "000000010000000000000006"),
		logical, other,
	}
	// b2's backup ended 30s after it started: recovery reaches back to there.
	rep := Report(all, func(id string) (int64, time.Time) {
		if id == "b2" {
			return 2, at(5).Add(30 * time.Second)
		}
		return int64(len(id)), time.Time{}
	})
	if len(rep) != 2 {
		t.Fatalf("%d servers: %+v", len(rep), rep)
	}
	r := rep[0] // sorted: systems first, then servers without one
	if r.SystemIdentifier != "7" || !reflect.DeepEqual(r.Servers, []string{"db1:5432"}) || !reflect.DeepEqual(r.Hosts, []string{"db1"}) {
		t.Errorf("server: %+v", r)
	}
	if len(r.BaseBackups) != 2 || r.BaseBackups[0].StopWAL != "000000010000000000000002" || r.BaseBackups[1].Size != 2 {
		t.Errorf("base backups: %+v", r.BaseBackups)
	}
	if len(r.LogicalDumps) != 1 || r.LogicalDumps[0].ID != "lg" {
		t.Errorf("logical dumps (the one without a system identifier belongs by its server): %+v", r.LogicalDumps)
	}
	if got := gapStrings(r.Archive.Gaps); !reflect.DeepEqual(got, []string{"000000010000000000000003 missing"}) {
		t.Errorf("gaps %q", got)
	}
	if !r.OldestRecoverable.Equal(at(5).Add(30*time.Second)) || !r.NewestRecoverable.Equal(at(9)) {
		t.Errorf("recoverable %v..%v, want b2's end to the last segment's time", r.OldestRecoverable, r.NewestRecoverable)
	}
	if o := rep[1]; o.SystemIdentifier != "" || len(o.LogicalDumps) != 1 || o.LogicalDumps[0].ID != "lo" || !o.OldestRecoverable.IsZero() {
		t.Errorf("logical-only server: %+v", o)
	}

	// Without the gap, the oldest base backup is the start.
	all = append(all, wal("w3", 10, "000000010000000000000003"))
	r = Report(all, nil)[0]
	if !r.Archive.Continuous() || !r.OldestRecoverable.Equal(at(1)) || !r.NewestRecoverable.Equal(at(9)) {
		t.Errorf("continuous: gaps %v, recoverable %v..%v", r.Archive.Gaps, r.OldestRecoverable, r.NewestRecoverable)
	}
}

func TestArchiveSetupProblem(t *testing.T) {
	for _, c := range []struct {
		setup           ArchiveSetup
		problem, remark string
	}{
		{ArchiveSetup{Mode: "off", Command: "bunker pg wal-push %p"}, `archive_mode is "off"`, ""},
		{ArchiveSetup{Mode: "on"}, "archive_command is not set", ""},
		{ArchiveSetup{Mode: "on", Command: "cp %p /mnt/%f"}, "", "does not run bunker's wal-push"},
		{ArchiveSetup{Mode: "on", Library: "basic_archive"}, "", `archive_library is "basic_archive"`},
		{ArchiveSetup{Mode: "always", Command: "bunker -r /srv/repo pg wal-push %p"}, "", ""},
	} {
		p, r := c.setup.Problem()
		if c.problem == "" && p != "" || !strings.Contains(p, c.problem) || c.remark == "" && r != "" || !strings.Contains(r, c.remark) {
			t.Errorf("%+v: problem %q remark %q, want %q %q", c.setup, p, r, c.problem, c.remark)
		}
	}
}
