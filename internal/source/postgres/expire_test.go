package postgres

import (
	"reflect"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/source"
)

var _ source.LogArchive = WALArchive{}

func baseSnap(id, sysid, start string) source.SnapshotInfo {
	return source.SnapshotInfo{ID: id, Kind: "full", Metadata: map[string]string{"source": "postgres", "type": "physical",
		"system_identifier": sysid, "timeline": "1", "start_lsn": "0/2000028", "stop_lsn": "0/2000100",
		"start_wal_file": start, "wal_method": "none"}}
}

func expiredIDs(x source.Expiry) []string {
	var out []string
	for _, e := range x.Expired {
		out = append(out, e.ID)
	}
	return out
}

func TestWALArchiveExpire(t *testing.T) {
	all := []source.SnapshotInfo{
		walSnap("w1", "7", "000000010000000000000001", "000000010000000000000002"),
		walSnap("w2", "7", "000000010000000000000003"),
		walSnap("h", "7", "00000002.history"),
		baseSnap("b1", "7", "000000010000000000000004"),
		walSnap("w4", "7", "000000010000000000000004"),
		baseSnap("b2", "7", "000000010000000000000009"),
		walSnap("o1", "8", "000000010000000000000001"), // a system without base backup
		{ID: "my", Metadata: map[string]string{"source": "mysql", "type": "physical", "start_wal_file": "000000010000000000000099"}},
		{ID: "lg", Metadata: map[string]string{"source": "postgres", "type": "logical", "system_identifier": "8"}},
	}
	x := WALArchive{}.Expire(all)
	if got, want := expiredIDs(x), []string{"w1", "w2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("expired %v, want %v", got, want)
	}
	if x.Archives != 5 {
		t.Errorf("archives %d, want 5", x.Archives)
	}
	if x.Expired[0].Why != "(WAL 000000010000000000000001..000000010000000000000002)" {
		t.Errorf("why %q", x.Expired[0].Why)
	}
	if len(x.Notes) != 1 || !strings.Contains(x.Notes[0], "system 8 has no base backup: its 1 WAL archive snapshot(s) are kept") {
		t.Errorf("notes %q", x.Notes)
	}
	if (WALArchive{}).Name() != "WAL archive" {
		t.Error("name")
	}
}

// TestWALArchiveExpireHostile: metadata that cannot be read never makes
// expiry forget more (DESIGN.md, trust boundaries).
func TestWALArchiveExpireHostile(t *testing.T) {
	old := walSnap("old", "7", "000000010000000000000001")
	otherOld := walSnap("other-old", "8", "000000010000000000000001")
	base7 := baseSnap("b7", "7", "000000010000000000000005")
	base8 := baseSnap("b8", "8", "000000010000000000000005")
	edit := func(s source.SnapshotInfo, kv ...string) source.SnapshotInfo {
		md := map[string]string{}
		for k, v := range s.Metadata {
			md[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<absent>" {
				delete(md, kv[i])
			} else {
				md[kv[i]] = kv[i+1]
			}
		}
		s.Metadata = md
		s.ID += "'"
		return s
	}
	for _, c := range []struct {
		name  string
		snaps []source.SnapshotInfo
		want  []string // expired
		note  string
	}{
		{"control", []source.SnapshotInfo{old, otherOld, base7, base8}, []string{"old", "other-old"}, ""},
		{"unparsable wal_last", []source.SnapshotInfo{edit(old, "wal_last", "../../x"), base7}, nil, `wal_last "../../x"`},
		{"unparsable wal_files", []source.SnapshotInfo{edit(old, "wal_files", "000000010000000000000001,junk"), base7}, nil, "cannot be read"},
		{"no wal_last", []source.SnapshotInfo{edit(old, "wal_last", "<absent>"), base7}, nil, "no system_identifier or wal_last"},
		{"archive without system", []source.SnapshotInfo{edit(old, "system_identifier", "<absent>"), base7}, nil, "cannot be read"},
		{"archive with bad system", []source.SnapshotInfo{edit(old, "system_identifier", "7; rm"), base7}, nil, `system_identifier "7; rm"`},
		// A base backup that cannot be read keeps its system's WAL, and
		// every system's when its system is unknown.
		{"base with bad start", []source.SnapshotInfo{old, otherOld, base7, base8, edit(base7, "start_wal_file", "00000001000000000000000X")},
			[]string{"other-old"}, "all WAL of system 7 is kept"},
		{"base without start", []source.SnapshotInfo{old, otherOld, base7, base8, edit(base7, "start_wal_file", "<absent>")},
			[]string{"other-old"}, "all WAL of system 7 is kept"},
		{"base with bad system", []source.SnapshotInfo{old, otherOld, base7, base8, edit(base7, "system_identifier", "seven")},
			nil, "all WAL is kept"},
		{"base of an unknown type", []source.SnapshotInfo{old, otherOld, base7, base8, edit(base8, "type", "incremental")},
			[]string{"old"}, "all WAL of system 8 is kept"},
		// Mixed systems: one system's base backup expires none of
		// another's WAL.
		{"mixed systems", []source.SnapshotInfo{old, otherOld, base7}, []string{"old"}, "system 8 has no base backup"},
		// A history file last: kept.
		{"history last", []source.SnapshotInfo{walSnap("h", "7", "000000010000000000000001", "00000002.history"), base7}, nil, ""},
		// A snapshot claiming another source's archive is not ours.
		{"foreign source", []source.SnapshotInfo{edit(old, "source", "mysql"), base7}, nil, ""},
	} {
		x := WALArchive{}.Expire(c.snaps)
		if got := expiredIDs(x); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: expired %v, want %v", c.name, got, c.want)
		}
		if c.note != "" && !strings.Contains(strings.Join(x.Notes, "\n"), c.note) {
			t.Errorf("%s: notes %q lack %q", c.name, x.Notes, c.note)
		}
	}
}

func FuzzWALArchiveExpire(f *testing.F) {
	f.Add("000000010000000000000001", "000000010000000000000002", "7", "000000010000000000000005", "7")
	f.Add("000000010000000000000001", "00000002.history", "7", "000000010000000000000005", "8")
	f.Fuzz(func(t *testing.T, first, last, sys, start, baseSys string) {
		w := walSnap("w", sys, first)
		w.Metadata["wal_last"] = last
		b := baseSnap("b", baseSys, start)
		x := WALArchive{}.Expire([]source.SnapshotInfo{w, b})
		if len(x.Expired) == 0 {
			return
		}
		// Whatever expires was read: its last segment precedes the
		// start of a readable base backup of its own system.
		lw, err1 := ParseWALName(last)
		sw, err2 := ParseWALName(start)
		if err1 != nil || err2 != nil || sys != baseSys || lw.Kind == WALHistory || sw.Kind != WALSegment || lw.Segment >= sw.Segment {
			t.Fatalf("expired %v from wal %q..%q of %q and base at %q of %q", x.Expired, first, last, sys, start, baseSys)
		}
	})
}
