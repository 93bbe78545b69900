package postgres

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/bunkerbackup/bunker/internal/source"
)

// Source is the "source" a PostgreSQL snapshot records.
const Source = "postgres"

// The types of PostgreSQL snapshots (metadata "type").
const (
	TypeLogical  = "logical"  // pg_dump per database
	TypePhysical = "physical" // a base backup under pgdata/
	TypeWAL      = "wal"      // WAL archive files under wal/
)

// Metadata is what a PostgreSQL snapshot records in its metadata, so
// that lists, expiry and restores can choose snapshots without reading
// their files. The package writes it (Map) and reads it (ParseMetadata);
// the stored keys and values are part of the repository format and do
// not change:
//
//	source             "postgres"
//	type               logical, physical or wal
//	server             host:port (logical, physical)
//	server_version     e.g. "15.4" (logical, physical)
//	databases          the dumped databases, comma-separated (logical)
//	system_identifier  the cluster's, decimal (physical, wal; logical when known)
//	timeline           decimal (as system_identifier)
//	start_lsn stop_lsn e.g. "0/2000028" (physical)
//	start_wal_file     the first WAL segment the backup needs (physical)
//	wal_method         fetch or none (physical)
//	wal_first wal_last the smallest and largest archived file name (wal)
//	wal_files          the archived file names, comma-separated (wal)
type Metadata struct {
	Type             string
	Server           string
	ServerVersion    string
	Databases        string // informational: a database name may hold a comma; postgres/backup.json is authoritative
	SystemIdentifier string
	Timeline         uint32
	StartLSN         string
	StopLSN          string
	StartWALFile     string
	WALMethod        string
	WALFirst         string
	WALLast          string
	WALFiles         []string
}

// Map returns the snapshot metadata, key for key as the backups have
// always stored it.
func (m Metadata) Map() map[string]string {
	out := map[string]string{"source": Source, "type": m.Type}
	tli := strconv.FormatUint(uint64(m.Timeline), 10)
	switch m.Type {
	case TypeLogical:
		out["server"] = m.Server
		out["server_version"] = m.ServerVersion
		out["databases"] = m.Databases
		if m.SystemIdentifier != "" {
			out["system_identifier"] = m.SystemIdentifier
			out["timeline"] = tli
		}
	case TypePhysical:
		out["server"] = m.Server
		out["server_version"] = m.ServerVersion
		out["system_identifier"] = m.SystemIdentifier
		out["timeline"] = tli
		out["start_lsn"] = m.StartLSN
		out["stop_lsn"] = m.StopLSN
		out["start_wal_file"] = m.StartWALFile
		out["wal_method"] = m.WALMethod
	case TypeWAL:
		out["system_identifier"] = m.SystemIdentifier
		out["timeline"] = tli
		out["wal_first"] = m.WALFirst
		out["wal_last"] = m.WALLast
		out["wal_files"] = strings.Join(m.WALFiles, ",")
	}
	return out
}

// IsPostgres reports whether snapshot metadata md is a PostgreSQL
// snapshot's, readable or not.
func IsPostgres(md map[string]string) bool { return md["source"] == Source }

// MetadataError is snapshot metadata that does not parse: the key, its
// value and what is wrong with it.
type MetadataError struct {
	Key, Value string
	Problem    string
}

func (e *MetadataError) Error() string {
	return fmt.Sprintf("snapshot metadata %s %q: %s", e.Key, e.Value, e.Problem)
}

// ParseMetadata reads the metadata of a PostgreSQL snapshot back.
// Snapshots are untrusted input: a value that does not parse is an
// error (a *MetadataError naming the key and value), never a guess. An
// absent or empty value reads as the zero value (a planted or older
// snapshot may lack keys): whoever needs a value checks that it is
// there. Keys it does not know are ignored.
func ParseMetadata(md map[string]string) (Metadata, error) {
	bad := func(key, problem string) (Metadata, error) {
		return Metadata{}, &MetadataError{Key: key, Value: md[key], Problem: problem}
	}
	if md["source"] != Source {
		return bad("source", "not a PostgreSQL snapshot")
	}
	m := Metadata{
		Type: md["type"], Server: md["server"], ServerVersion: md["server_version"], Databases: md["databases"],
		SystemIdentifier: md["system_identifier"], StartLSN: md["start_lsn"], StopLSN: md["stop_lsn"],
		StartWALFile: md["start_wal_file"], WALMethod: md["wal_method"], WALFirst: md["wal_first"], WALLast: md["wal_last"],
	}
	if m.Type != TypeLogical && m.Type != TypePhysical && m.Type != TypeWAL {
		return bad("type", "not logical, physical or wal")
	}
	if v := m.SystemIdentifier; v != "" {
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return bad("system_identifier", "not a system identifier (a decimal number)")
		}
	}
	if v := md["timeline"]; v != "" {
		t, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("timeline", "not a timeline (a decimal number)")
		}
		m.Timeline = uint32(t)
	}
	for _, k := range []string{"start_lsn", "stop_lsn"} {
		if v := md[k]; v != "" {
			if _, err := ParseLSN(v); err != nil {
				return bad(k, "not an LSN")
			}
		}
	}
	if v := m.StartWALFile; v != "" && !IsSegmentName(v) {
		return bad("start_wal_file", "not a WAL segment name")
	}
	if v := m.WALMethod; v != "" && v != "fetch" && v != "none" {
		return bad("wal_method", "not fetch or none")
	}
	for _, k := range []string{"wal_first", "wal_last"} {
		if v := md[k]; v != "" {
			if _, err := ParseWALName(v); err != nil {
				return bad(k, "not a WAL file name")
			}
		}
	}
	if v := md["wal_files"]; v != "" {
		m.WALFiles = strings.Split(v, ",")
		for _, n := range m.WALFiles {
			if _, err := ParseWALName(n); err != nil {
				return bad("wal_files", fmt.Sprintf("%q is not a WAL file name", n))
			}
		}
	}
	return m, nil
}

// CheckBackup reads the metadata md of a snapshot that should be a
// PostgreSQL backup of type typ, and says what it is when it is not.
func CheckBackup(md map[string]string, typ string) (Metadata, error) {
	if !IsPostgres(md) || md["type"] != typ {
		return Metadata{}, fmt.Errorf("is not a %s PostgreSQL backup (source %q, type %q)", typ, md["source"], md["type"])
	}
	m, err := ParseMetadata(md)
	if err != nil {
		return Metadata{}, fmt.Errorf("is a %s PostgreSQL backup that cannot be read: %w", typ, err)
	}
	return m, nil
}

// Kinds of physical backup (the snapshot's kind).
const (
	KindFull         = "full"
	KindIncremental  = "incremental"
	KindDifferential = "differential"
)

// PhysicalParent picks, among the earlier snapshots of the same server
// and host (oldest first), the parent and base of a new physical backup
// (snapshot IDs, "" for none) and its kind. The first physical backup is
// full. A differential one compares against the last full one (its
// parent and base); an incremental one's parent is the last physical
// backup and its base the last full one. Snapshots that are not readable
// physical backups are passed over.
func PhysicalParent(earlier []source.SnapshotInfo, differential bool) (parent, base, kind string) {
	var last, lastFull string
	for _, s := range earlier {
		if _, err := CheckBackup(s.Metadata, TypePhysical); err != nil {
			continue
		}
		last = s.ID
		if s.Kind == KindFull {
			lastFull = s.ID
		}
	}
	switch {
	case lastFull == "":
		return "", "", KindFull
	case differential:
		return lastFull, lastFull, KindDifferential
	default:
		return last, lastFull, KindIncremental
	}
}
