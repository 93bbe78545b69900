package mysql

import (
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBackupMetaRoundTrip(t *testing.T) {
	m := BackupMeta{Flavour: MariaDB, ServerVersion: "10.11.6-MariaDB", Physical: true,
		Position: BinlogPos{File: "binlog.000007", Pos: 1234}, GTID: "0-1-42", Databases: []string{"a", "b,c", "50%"}}
	md := m.Map()
	want := map[string]string{"flavour": "mariadb", "server_version": "10.11.6-MariaDB", "physical": "true",
		"binlog_file": "binlog.000007", "binlog_pos": "1234", "gtid": "0-1-42", "databases": "a,b%2Cc,50%25"}
	if !maps.Equal(md, want) {
		t.Errorf("Map() = %v, want %v", md, want)
	}
	got, err := ParseBackupMeta(md)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("round trip: %+v %v", got, err)
	}
	// Without a position or databases.
	m = BackupMeta{Flavour: MySQL, ServerVersion: "8.0"}
	if md := m.Map(); len(md) != 3 || md["physical"] != "false" {
		t.Errorf("Map() = %v", md)
	}
	if got, err := ParseBackupMeta(m.Map()); err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("round trip: %+v %v", got, err)
	}
}

func TestBackupMetaHostile(t *testing.T) {
	for key, val := range map[string]string{
		"physical":    "maybe",
		"binlog_file": "../../etc/passwd",
		"binlog_pos":  "-1",
		"databases":   "a,%zz",
	} {
		md := BackupMeta{Position: BinlogPos{File: "binlog.000001", Pos: 4}, Databases: []string{"a"}}.Map()
		md[key] = val
		_, err := ParseBackupMeta(md)
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), val) {
			t.Errorf("%s=%q: error %v does not name the key and value", key, val, err)
		}
	}
	md := map[string]string{"binlog_file": "binlog.000001"} // no binlog_pos
	if _, err := ParseBackupMeta(md); err == nil {
		t.Error("binlog_file without binlog_pos accepted")
	}
}

func TestArchiveMetaRoundTrip(t *testing.T) {
	m := ArchiveMeta{Flavour: MariaDB, ServerVersion: "10.11", Until: time.Date(2026, 5, 1, 10, 0, 0, 5, time.UTC), Files: []BinlogFile{
		{Name: "binlog.000001", Size: 100, Complete: true, First: time.Unix(5, 0).UTC(), Last: time.Unix(9, 0).UTC()},
		{Name: "binlog.000002", Size: 7},
	}}
	md := m.Map()
	want := map[string]string{"flavour": "mariadb", "server_version": "10.11", "binlog_files": "binlog.000001", "partial": "binlog.000002",
		"binlog_index": "binlog.000001 100 5 9;binlog.000002 7 0 0", "until": "2026-05-01T10:00:00.000000005Z"}
	if !maps.Equal(md, want) {
		t.Errorf("Map() = %v, want %v", md, want)
	}
	got, err := ParseArchiveMeta(md)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("round trip: %+v %v", got, err)
	}
}

func TestArchiveMetaHostile(t *testing.T) {
	for key, val := range map[string]string{
		"binlog_index": "binlog.000001 1 2",
		"until":        "yesterday",
	} {
		md := ArchiveMeta{Files: []BinlogFile{{Name: "binlog.000001", Size: 4, Complete: true}}}.Map()
		md[key] = val
		_, err := ParseArchiveMeta(md)
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), val) {
			t.Errorf("%s=%q: error %v does not name the key and value", key, val, err)
		}
	}
}

func FuzzParseBackupMeta(f *testing.F) {
	f.Add("binlog.000001", "4", "true", "a,b%2Cc")
	f.Add("", "", "false", "")
	f.Fuzz(func(t *testing.T, file, pos, physical, dbs string) {
		md := map[string]string{"binlog_file": file, "binlog_pos": pos, "physical": physical, "databases": dbs}
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

func FuzzParseArchiveMeta(f *testing.F) {
	f.Add("binlog.000001 100 5 9;binlog.000002 7 0 0", "binlog.000002", "2026-05-01T10:00:00Z")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, index, partial, until string) {
		md := map[string]string{"binlog_index": index, "partial": partial, "until": until}
		m, err := ParseArchiveMeta(md)
		if err != nil {
			return
		}
		for _, f := range m.Files {
			if _, _, err := ParseBinlogName(f.Name); err != nil {
				t.Fatalf("file name %q accepted", f.Name)
			}
		}
		again, err := ParseArchiveMeta(m.Map())
		if err != nil || len(again.Files) != len(m.Files) {
			t.Fatalf("round trip of %v: %+v %v", md, again, err)
		}
	})
}
