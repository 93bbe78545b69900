package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

// Golden metadata: exactly what the backups have stored since format
// v1 (with "source", which the caller adds). Map must reproduce every
// key and value, or existing repositories read differently.
var goldenMetadata = []struct {
	name string
	md   map[string]string
	want Metadata
}{
	{"logical", map[string]string{"source": "postgres", "type": "logical", "server": "127.0.0.1:5432",
		"server_version": "15.14 (Debian 15.14-0+deb12u1)", "databases": "odd/name ü,postgres,shop",
		"system_identifier": "7412345678901234567", "timeline": "1"},
		Metadata{Type: TypeLogical, Server: "127.0.0.1:5432", ServerVersion: "15.14 (Debian 15.14-0+deb12u1)",
			Databases: "odd/name ü,postgres,shop", SystemIdentifier: "7412345678901234567", Timeline: 1}},
	{"logical without pg_control", map[string]string{"source": "postgres", "type": "logical", "server": "db:5432",
		"server_version": "16.4", "databases": "app"},
		Metadata{Type: TypeLogical, Server: "db:5432", ServerVersion: "16.4", Databases: "app"}},
	{"physical", map[string]string{"source": "postgres", "type": "physical", "server": "127.0.0.1:5432", "server_version": "15.14",
		"system_identifier": "7412345678901234567", "timeline": "2", "start_lsn": "0/2000028", "stop_lsn": "0/2000100",
		"start_wal_file": "000000020000000000000002", "wal_method": "none"},
		Metadata{Type: TypePhysical, Server: "127.0.0.1:5432", ServerVersion: "15.14", SystemIdentifier: "7412345678901234567",
			Timeline: 2, StartLSN: "0/2000028", StopLSN: "0/2000100", StartWALFile: "000000020000000000000002", WALMethod: "none"}},
	{"wal", map[string]string{"source": "postgres", "type": "wal", "system_identifier": "7412345678901234567", "timeline": "1",
		"wal_first": "000000010000000000000003", "wal_last": "00000002.history",
		"wal_files": "000000010000000000000003,000000010000000000000003.00000028.backup,00000002.history"},
		Metadata{Type: TypeWAL, SystemIdentifier: "7412345678901234567", Timeline: 1, WALFirst: "000000010000000000000003",
			WALLast: "00000002.history", WALFiles: []string{"000000010000000000000003", "000000010000000000000003.00000028.backup", "00000002.history"}}},
}

func TestMetadataGolden(t *testing.T) {
	for _, g := range goldenMetadata {
		m, err := ParseMetadata(g.md)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if !reflect.DeepEqual(m, g.want) {
			t.Errorf("%s: parsed %+v\nwant %+v", g.name, m, g.want)
		}
		if got := g.want.Map(); !reflect.DeepEqual(got, g.md) {
			t.Errorf("%s: Map() = %v\nwant %v", g.name, got, g.md)
		}
	}
}

func TestMetadataErrorsNameKeyAndValue(t *testing.T) {
	base := func() map[string]string {
		m := map[string]string{}
		for k, v := range goldenMetadata[2].md {
			m[k] = v
		}
		return m
	}
	for _, c := range []struct{ key, value string }{
		{"source", "mysql"}, {"type", "incremental"}, {"system_identifier", "12ab"}, {"timeline", "-1"},
		{"timeline", "4294967296"}, {"start_lsn", "0/XYZ"}, {"stop_lsn", "0"}, {"start_wal_file", "../../etc/passwd"},
		{"start_wal_file", "00000002.history"}, {"wal_method", "stream"}, {"wal_first", "x"}, {"wal_last", "000000000000000000000001"},
		{"wal_files", "000000010000000000000003,,"}, {"wal_files", "000000010000000000000003,../x"},
	} {
		md := base()
		md[c.key] = c.value
		_, err := ParseMetadata(md)
		var me *MetadataError
		if !errors.As(err, &me) || me.Key != c.key || me.Value != c.value || !strings.Contains(err.Error(), c.key) || !strings.Contains(err.Error(), c.value) {
			t.Errorf("%s=%q: %v", c.key, c.value, err)
		}
	}
	// Absent values read as zero: whoever needs one checks it.
	m, err := ParseMetadata(map[string]string{"source": "postgres", "type": "physical", "system_identifier": "1"})
	if err != nil || m.StartWALFile != "" || m.Timeline != 0 {
		t.Fatalf("%+v, %v", m, err)
	}
}

func TestCheckBackup(t *testing.T) {
	if _, err := CheckBackup(goldenMetadata[0].md, TypeLogical); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		md   map[string]string
		typ  string
		want string
	}{
		{goldenMetadata[0].md, TypePhysical, `is not a physical PostgreSQL backup (source "postgres", type "logical")`},
		{map[string]string{"source": "mysql"}, TypeLogical, `is not a logical PostgreSQL backup (source "mysql", type "")`},
		{map[string]string{"source": "postgres", "type": "physical", "timeline": "x"}, TypePhysical, `snapshot metadata timeline "x"`},
	} {
		if _, err := CheckBackup(c.md, c.typ); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v as %s: %v, want %q", c.md, c.typ, err, c.want)
		}
	}
}

func TestArchiveWAL(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for _, n := range []string{"000000010000000000000004", "000000010000000000000003", "00000002.history"} {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte(n), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	sink := newMemSink()
	m, err := ArchiveWAL(context.Background(), sink, paths, "77")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"source": "postgres", "type": "wal", "system_identifier": "77", "timeline": "1",
		"wal_first": "000000010000000000000003", "wal_last": "00000002.history",
		"wal_files": "000000010000000000000004,000000010000000000000003,00000002.history"}
	if got := m.Map(); !reflect.DeepEqual(got, want) {
		t.Fatalf("metadata %v\nwant %v", got, want)
	}
	if string(sink.files["wal/00000002.history"]) != "00000002.history" || len(sink.files) != 3 {
		t.Fatalf("files %v", sink.files)
	}
	if _, err := ArchiveWAL(context.Background(), newMemSink(), []string{filepath.Join(dir, "pg_control")}, "77"); err == nil {
		t.Fatal("a file that is not WAL archived")
	}
	// The system identifier: given, else none here.
	if id, err := ArchiveSystemID(paths, "77", filepath.Join(dir, "none")); err != nil || id != "77" {
		t.Fatalf("%q, %v", id, err)
	}
	if _, err := ArchiveSystemID(paths, "", filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "--system-id") {
		t.Fatalf("no header, no pg_control: %v", err)
	}
	if _, err := ArchiveSystemID(paths, "x1", ""); err == nil || !strings.Contains(err.Error(), `--system-id "x1" is not a number`) {
		t.Fatalf("bad --system-id: %v", err)
	}
}

func FuzzParseMetadata(f *testing.F) {
	keys := []string{"source", "type", "server", "server_version", "databases", "system_identifier", "timeline",
		"start_lsn", "stop_lsn", "start_wal_file", "wal_method", "wal_first", "wal_last", "wal_files"}
	for _, g := range goldenMetadata {
		var vals []string
		for _, k := range keys {
			vals = append(vals, g.md[k])
		}
		f.Add(strings.Join(vals, "\x00"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		vals := strings.Split(s, "\x00")
		md := map[string]string{}
		for i, k := range keys {
			if i < len(vals) {
				md[k] = vals[i]
			}
		}
		m, err := ParseMetadata(md)
		if err != nil {
			var me *MetadataError
			if !errors.As(err, &me) || md[me.Key] != me.Value {
				t.Fatalf("error %v names no key of %v", err, md)
			}
			return
		}
		// What parses is written back as something that parses and is
		// written back the same (Map keeps only its type's keys).
		m2, err := ParseMetadata(m.Map())
		if err != nil {
			t.Fatalf("Map of %+v does not parse: %v", m, err)
		}
		if !reflect.DeepEqual(m.Map(), m2.Map()) {
			t.Fatalf("round trip %v\n-> %v", m.Map(), m2.Map())
		}
		// Every archived name a reader will use parses.
		for _, f := range ArchiveFiles([]source.SnapshotInfo{{ID: "x", Time: time.Now(), Metadata: md}}, "") {
			if _, err := ParseWALName(f.Name); err != nil {
				t.Fatal(err)
			}
		}
	})
}
