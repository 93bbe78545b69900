package mongodb

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bunkerbackup/bunker/internal/source"
)

// SnapshotPaths are the snapshot paths of a deployment's backups and
// oplog archive: /mongodb/<hosts>.
func (c Config) SnapshotPaths() []string {
	hosts := strings.Join(c.Hosts(), ",")
	return []string{"/mongodb/" + strings.ReplaceAll(hosts, "/", "%2F")}
}

// ArchivedChunks returns the archived oplog chunks of the deployment whose
// snapshots have paths. A chunk whose metadata cannot be read is left out
// and reported in notes.
func ArchivedChunks(all []source.SnapshotInfo, paths []string) (chunks []ChunkInfo, notes []string) {
	for i := range all {
		s := &all[i]
		if s.Metadata["source"] != OplogSourceName || !slices.Equal(s.Paths, paths) {
			continue
		}
		ci, err := ParseChunkInfo(s.ID, s.Metadata)
		if err != nil {
			notes = append(notes, err.Error())
			continue
		}
		chunks = append(chunks, ci)
	}
	return chunks, notes
}

// ArchiveResume finds where archiving the oplog of the deployment whose
// snapshots have paths may continue: after the newest archived chunk, and
// after the end of the newest backup's oplog (nil when there is none).
// Snapshots whose metadata cannot be read are passed over.
func ArchiveResume(all []source.SnapshotInfo, paths []string) (chunkEnd, backupEnd *Timestamp) {
	newer := func(p **Timestamp, ts Timestamp) {
		if *p == nil || ts.After(**p) {
			*p = &ts
		}
	}
	for i := range all {
		s := &all[i]
		if !slices.Equal(s.Paths, paths) {
			continue
		}
		switch s.Metadata["source"] {
		case OplogSourceName:
			if ci, err := ParseChunkInfo(s.ID, s.Metadata); err == nil {
				newer(&chunkEnd, ci.End)
			}
		case SourceName:
			if m, err := ParseBackupMeta(s.Metadata); err == nil && m.Oplog {
				newer(&backupEnd, m.OplogEnd)
			}
		}
	}
	return chunkEnd, backupEnd
}

// PlanPointInTime checks, before anything is restored, that the backup
// (name is its snapshot, for messages) can be rolled forward to limit with
// the archived chunks: it must have recorded its oplog, limit must come
// after the end of its dump (only then is the data consistent), and the
// chunks must cover the rest without a gap.
func PlanPointInTime(name string, info *BackupInfo, limit Timestamp, chunks []ChunkInfo) error {
	if info.OplogEnd == "" {
		return fmt.Errorf("snapshot %s has no oplog position (taken without --oplog): it cannot start a point-in-time restore", name)
	}
	end, err := ParseTimestamp(info.OplogEnd)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	if !limit.After(end) {
		return fmt.Errorf("target %s is not after the end of snapshot %s's dump (%s): restore an older backup", FormatTimestamp(limit), name, info.OplogEnd)
	}
	_, err = PlanReplay(end, limit, chunks)
	return err
}

// LogArchive is the oplog archive's expiry (source.LogArchive).
type LogArchive struct{}

var _ source.LogArchive = LogArchive{}

// Name implements source.LogArchive.
func (LogArchive) Name() string { return "oplog archive" }

// Expire implements source.LogArchive: per deployment (snapshot paths),
// the chunks whose entries all come at or before the end of the oldest
// backup that recorded its oplog (ExpiredChunks). A chunk whose metadata
// cannot be read is kept; a deployment with a backup whose metadata
// cannot be read, or with no backup that recorded its oplog, keeps its
// whole archive.
func (LogArchive) Expire(all []source.SnapshotInfo) source.Expiry {
	var ex source.Expiry
	key := func(s *source.SnapshotInfo) string { return strings.Join(s.Paths, "\x00") }
	oldest := map[string]Timestamp{}
	unreadable := map[string]string{}
	chunks := map[string][]ChunkInfo{}
	var keys []string
	for i := range all {
		s := &all[i]
		k := key(s)
		switch s.Metadata["source"] {
		case SourceName:
			m, err := ParseBackupMeta(s.Metadata)
			if err != nil {
				if _, ok := unreadable[k]; !ok {
					unreadable[k] = fmt.Sprintf("backup %s: %v", shortID(s.ID), err)
				}
				continue
			}
			if !m.Oplog {
				continue
			}
			if o, ok := oldest[k]; !ok || m.OplogEnd.Before(o) {
				oldest[k] = m.OplogEnd
			}
		case OplogSourceName:
			ex.Archives++
			ci, err := ParseChunkInfo(s.ID, s.Metadata)
			if err != nil {
				ex.Notes = append(ex.Notes, fmt.Sprintf("%v (kept)", err))
				continue
			}
			if _, ok := chunks[k]; !ok {
				keys = append(keys, k)
			}
			chunks[k] = append(chunks[k], ci)
		}
	}
	for _, k := range keys {
		base, ok := oldest[k]
		if why, bad := unreadable[k]; bad {
			ex.Notes = append(ex.Notes, fmt.Sprintf("%s: %s, its whole oplog archive kept", strings.ReplaceAll(k, "\x00", ","), why))
			continue
		}
		if !ok {
			continue
		}
		for _, ci := range ExpiredChunks(base, chunks[k]) {
			ex.Expired = append(ex.Expired, source.Expired{ID: ci.ID,
				Why: fmt.Sprintf("(oplog %s..%s)", FormatTimestamp(ci.Start), FormatTimestamp(ci.End))})
		}
	}
	return ex
}

// shortID is how snapshots are named in messages.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
