package mysql

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

// SourceName is the snapshot metadata "source" of MySQL backups and
// binlog archive snapshots.
const SourceName = "mysql"

// kindContinuous is the snapshot kind of a log archive's snapshots.
const kindContinuous = "continuous"

// BackupMeta is the snapshot metadata of a backup (full kind): flavour,
// server_version, physical, binlog_file and binlog_pos, gtid, databases.
// This package writes it (Map) and reads it back (ParseBackupMeta); the
// keys and their formats are part of the repository format.
type BackupMeta struct {
	Flavour       Flavour
	ServerVersion string
	Physical      bool
	// Position is where a replay of all the backup's dumps starts (zero
	// when binary logging was off).
	Position  BinlogPos
	GTID      string
	Databases []string
}

// dbListEscaper escapes what would break the comma list of databases.
var dbListEscaper = strings.NewReplacer("%", "%25", ",", "%2C")

// Map is the metadata the snapshot stores.
func (m BackupMeta) Map() map[string]string {
	md := map[string]string{
		"flavour":        string(m.Flavour),
		"server_version": m.ServerVersion,
		"physical":       strconv.FormatBool(m.Physical),
	}
	if m.Position.File != "" {
		md["binlog_file"] = m.Position.File
		md["binlog_pos"] = strconv.FormatUint(m.Position.Pos, 10)
	}
	if m.GTID != "" {
		md["gtid"] = m.GTID
	}
	if len(m.Databases) > 0 {
		names := make([]string, len(m.Databases))
		for i, d := range m.Databases {
			names[i] = dbListEscaper.Replace(d)
		}
		md["databases"] = strings.Join(names, ",")
	}
	return md
}

// metaError is a metadata value that cannot be read.
func metaError(key, val string, err error) error {
	if err != nil {
		return fmt.Errorf("metadata %s=%q: %w", key, truncate(val), err)
	}
	return fmt.Errorf("metadata %s=%q is not valid", key, truncate(val))
}

// truncate keeps messages about hostile values short.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// ParseBackupMeta reads a backup's metadata back. Keys that are missing
// leave their fields zero; a value that is present but malformed is an
// error naming the key and the value.
func ParseBackupMeta(md map[string]string) (BackupMeta, error) {
	m := BackupMeta{Flavour: Flavour(md["flavour"]), ServerVersion: md["server_version"], GTID: md["gtid"]}
	if v, ok := md["physical"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return m, metaError("physical", v, nil)
		}
		m.Physical = b
	}
	if f, ok := md["binlog_file"]; ok {
		if _, _, err := ParseBinlogName(f); err != nil {
			return m, metaError("binlog_file", f, err)
		}
		p := md["binlog_pos"]
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return m, metaError("binlog_pos", p, nil)
		}
		m.Position = BinlogPos{File: f, Pos: n}
	}
	if v, ok := md["databases"]; ok && v != "" {
		for _, n := range strings.Split(v, ",") {
			d, err := unescapeDBName(n)
			if err != nil {
				return m, metaError("databases", v, err)
			}
			m.Databases = append(m.Databases, d)
		}
	}
	return m, nil
}

// unescapeDBName reverses dbListEscaper.
func unescapeDBName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "%25"):
			b.WriteByte('%')
		case strings.HasPrefix(s[i:], "%2C"):
			b.WriteByte(',')
		default:
			return "", fmt.Errorf("bad escape in %q", truncate(s))
		}
		i += 2
	}
	return b.String(), nil
}

// ArchiveMeta is the snapshot metadata of one binlog archive snapshot
// (continuous kind): flavour, server_version, binlog_files (the complete
// files, comma separated), partial (the active file), binlog_index (every
// file's size and event times) and until (RFC 3339).
type ArchiveMeta struct {
	Flavour       Flavour
	ServerVersion string
	// Files in log order: Name, Size, Complete, First and Last are set.
	Files []BinlogFile
	// Until: every event written before it is in this snapshot or
	// earlier ones (zero when not known).
	Until time.Time
}

// PushMeta is the metadata of the snapshot that stores a push.
func (s *Source) PushMeta(p Push) ArchiveMeta {
	m := pushMeta(p)
	m.Flavour, m.ServerVersion = s.Info.Flavour, s.Info.Version
	return m
}

func pushMeta(p Push) ArchiveMeta {
	m := ArchiveMeta{Until: p.Until}
	for _, f := range p.Files {
		m.Files = append(m.Files, BinlogFile{Name: f.Name, Size: f.Size, Complete: !f.Partial, First: f.First, Last: f.Last})
	}
	return m
}

// Map is the metadata the snapshot stores.
func (m ArchiveMeta) Map() map[string]string {
	md := map[string]string{}
	if m.Flavour != "" || m.ServerVersion != "" {
		md["flavour"] = string(m.Flavour)
		md["server_version"] = m.ServerVersion
	}
	var complete []string
	var index []binlogIndexEntry
	for _, f := range m.Files {
		if !f.Complete {
			md["partial"] = f.Name
		} else {
			complete = append(complete, f.Name)
		}
		e := binlogIndexEntry{Name: f.Name, Size: f.Size}
		if !f.First.IsZero() {
			e.First, e.Last = f.First.Unix(), f.Last.Unix()
		}
		index = append(index, e)
	}
	if len(complete) > 0 {
		md["binlog_files"] = strings.Join(complete, ",")
	}
	md["binlog_index"] = formatBinlogIndex(index)
	if !m.Until.IsZero() {
		md["until"] = m.Until.UTC().Format(time.RFC3339Nano)
	}
	return md
}

// ParseArchiveMeta reads an archive snapshot's metadata back; the files
// come from binlog_index and partial (binlog_files repeats what they say).
// A malformed value is an error naming the key and the value.
func ParseArchiveMeta(md map[string]string) (ArchiveMeta, error) {
	m := ArchiveMeta{Flavour: Flavour(md["flavour"]), ServerVersion: md["server_version"]}
	index, err := parseBinlogIndex(md["binlog_index"])
	if err != nil {
		return m, metaError("binlog_index", md["binlog_index"], err)
	}
	partial := md["partial"]
	for _, e := range index {
		f := BinlogFile{Name: e.Name, Size: e.Size, Complete: e.Name != partial}
		if e.First != 0 {
			f.First, f.Last = time.Unix(e.First, 0).UTC(), time.Unix(e.Last, 0).UTC()
		}
		m.Files = append(m.Files, f)
	}
	if u, ok := md["until"]; ok {
		if m.Until, err = time.Parse(time.RFC3339Nano, u); err != nil {
			return m, metaError("until", u, nil)
		}
	}
	return m, nil
}

// Backup kinds and names a snapshot is checked against.
func isBackup(s *source.SnapshotInfo) bool {
	return s.Metadata["source"] == SourceName && s.Kind != kindContinuous && len(s.Paths) == 1
}

func isArchive(s *source.SnapshotInfo) bool {
	return s.Metadata["source"] == SourceName && s.Kind == kindContinuous && len(s.Paths) == 1
}

// shortID is how snapshots are named in messages.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
