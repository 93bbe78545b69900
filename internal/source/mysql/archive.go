package mysql

import (
	"fmt"
	"path"
	"slices"

	"github.com/bunkerbackup/bunker/internal/source"
)

// BackupPath is the snapshot path of a server's backups.
func BackupPath(server string) string { return path.Clean("/mysql/" + server) }

// ArchivePath is the snapshot path of a server's binlog archive.
func ArchivePath(server string) string { return BackupPath(server) + "/binlog" }

// CheckBackup says why s is not a MySQL backup a restore can start from
// (nil when it is one).
func CheckBackup(s *source.SnapshotInfo) error {
	switch {
	case s.Metadata["source"] != SourceName:
		return fmt.Errorf("snapshot %s is not a MySQL backup (source %q)", shortID(s.ID), s.Metadata["source"])
	case s.Kind == kindContinuous:
		return fmt.Errorf("snapshot %s is part of a binlog archive, not a backup: restore a backup with --target-time or --target-position", shortID(s.ID))
	case len(s.Paths) != 1:
		return fmt.Errorf("snapshot %s has %d paths, a MySQL backup has one", shortID(s.ID), len(s.Paths))
	}
	return nil
}

// ArchiveServer is one server's binlog archive: its snapshot path and the
// host the archiver ran on.
type ArchiveServer struct {
	Path, Host string
}

// ArchiveServers lists the binlog archives among the snapshots, in order
// of first appearance.
func ArchiveServers(all []source.SnapshotInfo) []ArchiveServer {
	var out []ArchiveServer
	for i := range all {
		s := &all[i]
		if !isArchive(s) {
			continue
		}
		if k := (ArchiveServer{s.Paths[0], s.Host}); !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// inArchive reports whether s is a snapshot of the archive at path p
// written from host.
func inArchive(s *source.SnapshotInfo, p, host string) bool {
	return isArchive(s) && s.Host == host && s.Paths[0] == p
}

// Archived lists the binlog copies in the archive snapshots of one server
// (archive path p, host), in the order of the snapshots (oldest first).
// Open is left to the caller. A snapshot whose metadata cannot be read is
// an error.
func Archived(all []source.SnapshotInfo, p, host string) ([]BinlogFile, error) {
	var files []BinlogFile
	for i := range all {
		s := &all[i]
		if !inArchive(s, p, host) {
			continue
		}
		m, err := ParseArchiveMeta(s.Metadata)
		if err != nil {
			return nil, fmt.Errorf("binlog archive snapshot %s: %w", shortID(s.ID), err)
		}
		for _, f := range m.Files {
			f.Snapshot, f.SnapshotID = shortID(s.ID), s.ID
			files = append(files, f)
		}
	}
	return files, nil
}

// FindArchive collects what is archived for one server, for a
// point-in-time restore: the copy of every file a replay uses (Open left
// to the caller) and the latest moment the archiver had caught up.
func FindArchive(all []source.SnapshotInfo, p, host string) (*BinlogArchive, error) {
	files, err := Archived(all, p, host)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no binlogs are archived under %s from host %s: run bunker mysql binlog-archive (or give --binlog-path)", p, host)
	}
	arch := &BinlogArchive{Files: BestCopies(files)}
	for i := range all {
		if s := &all[i]; inArchive(s, p, host) {
			// Every one parsed in Archived.
			if m, err := ParseArchiveMeta(s.Metadata); err == nil && m.Until.After(arch.Until) {
				arch.Until = m.Until
			}
		}
	}
	return arch, nil
}

// LogArchive is the binlog archive's expiry (source.LogArchive).
type LogArchive struct{}

var _ source.LogArchive = LogArchive{}

// Name implements source.LogArchive.
func (LogArchive) Name() string { return "binlog archive" }

// Expire implements source.LogArchive: per server and host, the archive
// snapshots whose every file is older than the file the oldest backup
// still kept starts from, or has a better copy elsewhere (ExpireBinlogs).
// An archive snapshot whose metadata cannot be read is kept (and not
// counted); a server whose backups' positions cannot all be read, or that
// has no backup with a position, keeps all of its binlogs.
func (LogArchive) Expire(all []source.SnapshotInfo) source.Expiry {
	var ex source.Expiry
	// Where the oldest backup of every server starts.
	oldest := map[ArchiveServer]string{}
	unreadable := map[ArchiveServer]string{}
	for i := range all {
		s := &all[i]
		if !isBackup(s) {
			continue
		}
		k := ArchiveServer{s.Paths[0] + "/binlog", s.Host}
		m, err := ParseBackupMeta(s.Metadata)
		if err != nil {
			// It may still be restorable from its backup.json: keep
			// what it could need.
			if _, ok := unreadable[k]; !ok {
				unreadable[k] = fmt.Sprintf("backup %s: %v", shortID(s.ID), err)
			}
			continue
		}
		f := m.Position.File
		if f == "" {
			continue // binary logging was off
		}
		if cur, ok := oldest[k]; !ok || (BinlogPos{File: f}).Before(BinlogPos{File: cur}) {
			oldest[k] = f
		}
	}
	archives := map[ArchiveServer][]ArchiveSnapshot{}
	var keys []ArchiveServer
	for i := range all {
		s := &all[i]
		if !isArchive(s) {
			continue
		}
		m, err := ParseArchiveMeta(s.Metadata)
		if err != nil {
			ex.Notes = append(ex.Notes, fmt.Sprintf("binlog archive snapshot %s: %v (kept)", shortID(s.ID), err))
			continue
		}
		k := ArchiveServer{s.Paths[0], s.Host}
		if _, ok := archives[k]; !ok {
			keys = append(keys, k)
		}
		archives[k] = append(archives[k], ArchiveSnapshot{ID: s.ID, Files: m.Files, Until: m.Until})
	}
	for _, k := range keys {
		ex.Archives += len(archives[k])
		if why, ok := unreadable[k]; ok {
			ex.Notes = append(ex.Notes, fmt.Sprintf("%s (host %s): %s, all binlogs kept", k.Path, k.Host, why))
			continue
		}
		if oldest[k] == "" {
			ex.Notes = append(ex.Notes, fmt.Sprintf("%s (host %s): no backup records a binlog position, all binlogs kept", k.Path, k.Host))
			continue
		}
		for _, id := range ExpireBinlogs(archives[k], oldest[k]) {
			ex.Expired = append(ex.Expired, source.Expired{ID: id, Why: fmt.Sprintf("(%s, host %s)", k.Path, k.Host)})
		}
	}
	return ex
}
