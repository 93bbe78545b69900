package mongodb

import (
	"fmt"
	"strconv"
	"strings"
)

// Snapshot metadata "source" of backups and of oplog archive chunks.
const (
	SourceName      = "mongodb"
	OplogSourceName = "mongodb-oplog"
)

// BackupMeta is the snapshot metadata of a backup: server_version,
// topology, hosts; databases and collections (driver dumps) or tool
// (mongodump); oplog_start and oplog_end (with --oplog); users. This
// package writes it (Map) and reads it back (ParseBackupMeta); the keys
// and their formats are part of the repository format.
type BackupMeta struct {
	ServerVersion string
	Topology      string
	Hosts         []string
	// Tool is "mongodump" for an archive backup; Databases and
	// Collections are recorded only without one.
	Tool        string
	Databases   []string
	Collections int
	// Oplog is set when the dump recorded the oplog from OplogStart to
	// OplogEnd.
	Oplog                bool
	OplogStart, OplogEnd Timestamp
	Users                bool
}

// Meta is what the snapshot records of the backup.
func (b *BackupInfo) Meta() BackupMeta {
	m := BackupMeta{ServerVersion: b.ServerVersion, Topology: b.Topology, Hosts: b.Hosts, Tool: b.Tool, Users: b.Users}
	for _, c := range b.Collections {
		if c.authCollection() {
			continue
		}
		m.Collections++
		if len(m.Databases) == 0 || m.Databases[len(m.Databases)-1] != c.DB {
			m.Databases = append(m.Databases, c.DB)
		}
	}
	if b.OplogStart != "" {
		// DecodeBackupInfo and Dump made sure they are timestamps.
		m.Oplog = true
		m.OplogStart, _ = ParseTimestamp(b.OplogStart)
		m.OplogEnd, _ = ParseTimestamp(b.OplogEnd)
	}
	return m
}

// Map is the metadata the snapshot stores.
func (m BackupMeta) Map() map[string]string {
	md := map[string]string{
		"server_version": m.ServerVersion,
		"topology":       m.Topology,
		"hosts":          strings.Join(m.Hosts, ","),
	}
	if m.Tool == "" {
		md["databases"] = strings.Join(m.Databases, ",")
		md["collections"] = strconv.Itoa(m.Collections)
	} else {
		md["tool"] = m.Tool
	}
	if m.Oplog {
		md["oplog_start"] = FormatTimestamp(m.OplogStart)
		md["oplog_end"] = FormatTimestamp(m.OplogEnd)
	}
	if m.Users {
		md["users"] = "true"
	}
	return md
}

// metaError is a metadata value that cannot be read.
func metaError(key, val string, err error) error {
	if len(val) > 80 {
		val = val[:80] + "…"
	}
	if err != nil {
		return fmt.Errorf("metadata %s=%q: %w", key, val, err)
	}
	return fmt.Errorf("metadata %s=%q is not valid", key, val)
}

// splitList reads a comma list ("" is none).
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// ParseBackupMeta reads a backup's metadata back. Missing keys leave their
// fields zero; a value that is present but malformed is an error naming
// the key and the value.
func ParseBackupMeta(md map[string]string) (BackupMeta, error) {
	m := BackupMeta{ServerVersion: md["server_version"], Topology: md["topology"], Hosts: splitList(md["hosts"]),
		Tool: md["tool"], Databases: splitList(md["databases"])}
	if v, ok := md["collections"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return m, metaError("collections", v, nil)
		}
		m.Collections = n
	}
	start, hasStart := md["oplog_start"]
	end, hasEnd := md["oplog_end"]
	switch {
	case hasStart != hasEnd && hasStart:
		return m, metaError("oplog_start", start, fmt.Errorf("without oplog_end"))
	case hasStart != hasEnd:
		return m, metaError("oplog_end", end, fmt.Errorf("without oplog_start"))
	case hasStart:
		var err error
		if m.OplogStart, err = ParseTimestamp(start); err != nil {
			return m, metaError("oplog_start", start, err)
		}
		if m.OplogEnd, err = ParseTimestamp(end); err != nil {
			return m, metaError("oplog_end", end, err)
		}
		if m.OplogEnd.Before(m.OplogStart) {
			return m, metaError("oplog_end", end, fmt.Errorf("before oplog_start %s", start))
		}
		m.Oplog = true
	}
	if v, ok := md["users"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return m, metaError("users", v, nil)
		}
		m.Users = b
	}
	return m, nil
}
