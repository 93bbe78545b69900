package postgres

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

func TestParseConnInfo(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ConnInfo
	}{
		{"", ConnInfo{}},
		{"host=db port=5433 user=app dbname=shop", ConnInfo{"host": "db", "port": "5433", "user": "app", "dbname": "shop"}},
		{`password='it''s' host = h`, nil},
		{`password='it\'s a \\ test' host = h`, ConnInfo{"password": `it's a \ test`, "host": "h"}},
		{"postgresql://app:p%40ss@db.example:5433/shop?sslmode=require", ConnInfo{"user": "app", "password": "p@ss", "host": "db.example", "port": "5433", "dbname": "shop", "sslmode": "require"}},
		{"postgres://h1:1,h2:2/db", ConnInfo{"host": "h1,h2", "port": "1,2", "dbname": "db"}},
		{"postgresql://[::1]:5432/db", ConnInfo{"host": "::1", "port": "5432", "dbname": "db"}},
		{"postgresql:///db?host=/run/pg", ConnInfo{"dbname": "db", "host": "/run/pg"}},
		{"host", nil},
		{"=x", nil},
		{"a='unterminated", nil},
	} {
		got, err := ParseConnInfo(tc.in)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%q: parsed as %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	ci, _ := ParseConnInfo("postgresql://u:secret@h/db")
	if strings.Contains(ci.Public(), "secret") || !strings.Contains(ci.String(), "secret") {
		t.Errorf("Public %q, String %q", ci.Public(), ci.String())
	}
}

func FuzzParseConnInfo(f *testing.F) {
	for _, s := range []string{"host=a port=1", "postgresql://u:p@h:1/d?x=y", `a='b\'c' d=e`, "postgres://[::1]/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ci, err := ParseConnInfo(s)
		if err != nil {
			return
		}
		for k := range ci {
			if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r == '=' || r < 128 && isSpace(byte(r)) }) {
				return // URI query keys are free-form; keyword form cannot carry them
			}
		}
		again, err := ParseConnInfo(ci.String())
		if err != nil {
			t.Fatalf("String() %q of %q does not parse: %v", ci.String(), s, err)
		}
		if !reflect.DeepEqual(ci, again) {
			t.Fatalf("round trip of %q: %v != %v", s, ci, again)
		}
	})
}

func TestParseWALName(t *testing.T) {
	for _, tc := range []struct {
		name, kind string
		tli        uint32
		seg        uint64
	}{
		{"000000010000000A000000FE", WALSegment, 1, 0xA<<32 | 0xFE},
		{"000000020000000000000003.partial", WALPartial, 2, 3},
		{"00000002.history", WALHistory, 2, 0},
		{"000000010000000000000002.00000028.backup", WALBackupHistory, 1, 2},
	} {
		w, err := ParseWALName(tc.name)
		if err != nil || w.Kind != tc.kind || w.Timeline != tc.tli || w.Segment != tc.seg {
			t.Errorf("%s: %+v %v", tc.name, w, err)
		}
	}
	for _, bad := range []string{"", "RECOVERYXLOG", "00000000000000000000000A", "000000010000000a000000fe", "0000000100000000000000", "../000000010000000000000001", "00000001.historyx"} {
		if _, err := ParseWALName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseWALName(f *testing.F) {
	f.Add("000000010000000A000000FE")
	f.Add("00000002.history")
	f.Add("000000010000000000000002.00000028.backup")
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWALName(s)
		if err == nil && (w.Name != s || strings.ContainsAny(s, "/\\") || w.Timeline == 0) {
			t.Fatalf("%q: %+v", s, w)
		}
	})
}

func TestSegmentSystemID(t *testing.T) {
	if id, ok := SegmentSystemID(testutil.WALSegmentHeader(7712435320503827730)); !ok || id != "7712435320503827730" {
		t.Fatalf("%s %v", id, ok)
	}
	h := testutil.WALSegmentHeader(1)
	h[2] = 0 // not a long header
	if _, ok := SegmentSystemID(h); ok {
		t.Fatal("short header accepted")
	}
	if _, ok := SegmentSystemID(h[:10]); ok {
		t.Fatal("truncated header accepted")
	}
}

func FuzzSegmentSystemID(f *testing.F) {
	f.Add(testutil.WALSegmentHeader(42))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = SegmentSystemID(b)
		_, _ = ControlSystemID(b)
	})
}

const sampleLabel = `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
CHECKPOINT LOCATION: 0/2000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-26 10:54:36 UTC
LABEL: pg_basebackup base backup
START TIMELINE: 1
`

const sampleManifest = `{ "PostgreSQL-Backup-Manifest-Version": 1,
"Files": [],
"WAL-Ranges": [
{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100" }
],
"Manifest-Checksum": "00"}`

func TestParseBackupLabel(t *testing.T) {
	var m PhysicalManifestData
	if err := parseBackupLabel([]byte(sampleLabel), &m); err != nil {
		t.Fatal(err)
	}
	if m.StartLSN != "0/2000028" || m.StartWALFile != "000000010000000000000002" || m.Timeline != 1 {
		t.Fatalf("%+v", m)
	}
	stop, err := manifestStopLSN([]byte(sampleManifest))
	if err != nil || stop != "0/2000100" {
		t.Fatalf("%q %v", stop, err)
	}
	if lsn, err := ParseLSN("16/B374D848"); err != nil || lsn != 0x16<<32|0xB374D848 {
		t.Fatalf("%x %v", lsn, err)
	}
	for _, bad := range []string{"", "1", "/1", "1/", "x/1", "123456789/0"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("LSN %q accepted", bad)
		}
	}
}

func FuzzParseBackupLabel(f *testing.F) {
	f.Add([]byte(sampleLabel), []byte(sampleManifest))
	f.Fuzz(func(t *testing.T, label, manifest []byte) {
		var m PhysicalManifestData
		if parseBackupLabel(label, &m) == nil && (!IsSegmentName(m.StartWALFile) || m.Timeline <= 0) {
			t.Fatalf("accepted %+v", m)
		}
		_, _ = manifestStopLSN(manifest)
	})
}

func FuzzParseManifests(f *testing.F) {
	f.Add([]byte(`{"format":"bunker-postgres-logical/1","databases":[{"name":"a","file":"postgres/databases/a.dump"}]}`))
	f.Add([]byte(`{"format":"bunker-postgres-physical/1","system_identifier":"1","start_wal_file":"000000010000000000000002"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseLogicalManifest(b); err == nil {
			for _, d := range m.Databases {
				if strings.Contains(d.File, "..") || !strings.HasPrefix(d.File, databasesDir) {
					t.Fatalf("accepted file %q", d.File)
				}
			}
		}
		_, _ = ParsePhysicalManifest(b)
	})
}

func TestDumpFileName(t *testing.T) {
	for in, want := range map[string]string{"shop": "shop.dump", "odd/name ü": "odd%2Fname%20%C3%BC.dump", ".x": "%2Ex.dump", "a.b": "a.b.dump"} {
		if got := DumpFileName(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// memSink records what a source writes.
type memSink struct {
	mu    sync.Mutex
	files map[string][]byte
	dirs  map[string]source.Meta
	links map[string]string
}

func newMemSink() *memSink {
	return &memSink{files: map[string][]byte{}, dirs: map[string]source.Meta{}, links: map[string]string{}}
}

func (s *memSink) WriteFile(ctx context.Context, p string, rd io.Reader, m *source.Meta) (int64, error) {
	b, err := io.ReadAll(rd)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[p] = b
	return int64(len(b)), err
}

func (s *memSink) Mkdir(p string, m *source.Meta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirs[p] = *m
	return nil
}

func (s *memSink) Symlink(p, target string, m *source.Meta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.links[p] = target
	return nil
}

func baseTar(t testing.TB, extra ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, typ byte, body []byte) {
		hdr := &tar.Header{Name: name, Typeflag: typ, Mode: 0o600, Size: int64(len(body)), Uid: 101, Gid: 104, Uname: "postgres"}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if typ == tar.TypeSymlink {
			hdr.Linkname = string(body)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			_, _ = tw.Write(body)
		}
	}
	add("./", tar.TypeDir, nil)
	add("backup_label", tar.TypeReg, []byte(sampleLabel))
	add("PG_VERSION", tar.TypeReg, []byte("15\n"))
	add("global/", tar.TypeDir, nil)
	ctl := make([]byte, 8192)
	binary.LittleEndian.PutUint64(ctl, 99)
	add("global/pg_control", tar.TypeReg, ctl)
	add("pg_tblspc/16384", tar.TypeSymlink, []byte("/srv/ts"))
	for _, e := range extra {
		add(e, tar.TypeReg, []byte("x"))
	}
	add("backup_manifest", tar.TypeReg, []byte(sampleManifest))
	_ = tw.Close()
	return buf.Bytes()
}

func TestReadBaseTar(t *testing.T) {
	sink := newMemSink()
	m := &PhysicalManifestData{}
	kept := map[string][]byte{}
	if err := readBaseTar(context.Background(), bytes.NewReader(baseTar(t)), sink, m, func(n string, b []byte) { kept[n] = b }); err != nil {
		t.Fatal(err)
	}
	if m.Files != 4 || len(kept) != 4 || sink.links["pgdata/pg_tblspc/16384"] != "/srv/ts" || sink.dirs["pgdata"].UID != 101 {
		t.Fatalf("files %d kept %d links %v dirs %v", m.Files, len(kept), sink.links, sink.dirs)
	}
	for _, bad := range []string{"../escape", "/abs/path"} {
		err := readBaseTar(context.Background(), bytes.NewReader(baseTar(t, bad)), newMemSink(), &PhysicalManifestData{}, func(string, []byte) {})
		if err == nil || !strings.Contains(err.Error(), "leaves the data directory") {
			t.Errorf("%s: %v", bad, err)
		}
	}
	b := baseTar(t)
	if err := readBaseTar(context.Background(), bytes.NewReader(b[:len(b)/2+100]), newMemSink(), &PhysicalManifestData{}, func(string, []byte) {}); err == nil {
		t.Error("truncated stream accepted")
	}
}

func FuzzReadBaseTar(f *testing.F) {
	f.Add(baseTar(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readBaseTar(context.Background(), bytes.NewReader(b), newMemSink(), &PhysicalManifestData{}, func(string, []byte) {})
	})
}

func TestSelectRecoveryWAL(t *testing.T) {
	var files []WALFile
	for _, n := range []string{"000000010000000000000001", "000000010000000000000002", "000000010000000000000003",
		"000000010000000000000004.partial", "000000010000000000000003.partial", "00000002.history", "000000020000000000000004"} {
		w, err := ParseWALName(n)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, WALFile{WALName: w, Ref: n})
	}
	sel, err := SelectRecoveryWAL(files, "000000010000000000000002")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range sel {
		got = append(got, f.Name+"<"+f.Ref.(string))
	}
	want := []string{"000000010000000000000002<000000010000000000000002",
		"000000010000000000000003<000000010000000000000003", "000000010000000000000004<000000010000000000000004.partial",
		"00000002.history<00000002.history", "000000020000000000000004<000000020000000000000004"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if err := CheckContinuity(sel, "000000010000000000000002", 0); err != nil {
		t.Fatal(err)
	}
	gap := append(append([]WALFile{}, sel[:1]...), sel[2:]...)
	if err := CheckContinuity(gap, "000000010000000000000002", 0); err == nil || !strings.Contains(err.Error(), "000000010000000000000003") {
		t.Fatalf("gap: %v", err)
	}
	if err := CheckContinuity(sel[2:], "000000010000000000000002", 0); err == nil {
		t.Fatal("missing first segment accepted")
	}
}
