package postgres

import (
	"fmt"
	"strconv"

	"github.com/bunkerbackup/bunker/internal/source"
)

// WALArchive is the WAL archive as a source.LogArchive: its expiry
// forgets the archive snapshots holding only WAL older than the oldest
// base backup of their system.
type WALArchive struct{}

// Name implements source.LogArchive.
func (WALArchive) Name() string { return "WAL archive" }

// Expire implements source.LogArchive. Per system, an archive snapshot
// expires when its last file is a segment (or partial or backup history
// file) older than the start segment of every physical backup of that
// system. It keeps, and says so in the notes:
//   - every archive snapshot whose metadata does not parse;
//   - all WAL of a system with a physical backup whose metadata does not
//     parse or lacks its system or start segment (all WAL of every
//     system when the backup's system cannot be told): its restore may
//     need any of it;
//   - all WAL of a system without a base backup.
//
// A snapshot whose last file is a timeline history file never expires
// (history files are small and every later recovery reads them).
func (WALArchive) Expire(all []source.SnapshotInfo) source.Expiry {
	var x source.Expiry
	oldest := map[string]WALName{}
	blocked := map[string]bool{}
	blockAll := false
	for _, s := range all {
		if !IsPostgres(s.Metadata) {
			continue
		}
		typ := s.Metadata["type"]
		if typ == TypeWAL || typ == TypeLogical {
			continue
		}
		// A base backup, or a snapshot of a type this version does not
		// know (it might need WAL).
		m, err := ParseMetadata(s.Metadata)
		if err == nil && (m.SystemIdentifier == "" || m.StartWALFile == "") {
			err = fmt.Errorf("no system_identifier or start_wal_file")
		}
		if err != nil {
			sys := s.Metadata["system_identifier"]
			if _, perr := strconv.ParseUint(sys, 10, 64); perr != nil {
				blockAll = true
				x.Notes = append(x.Notes, fmt.Sprintf("snapshot %s cannot be read (%v): all WAL is kept", short(s.ID), err))
			} else {
				blocked[sys] = true
				x.Notes = append(x.Notes, fmt.Sprintf("snapshot %s cannot be read (%v): all WAL of system %s is kept", short(s.ID), err, sys))
			}
			continue
		}
		w, _ := ParseWALName(m.StartWALFile) // a segment name: checked by ParseMetadata
		if o, ok := oldest[m.SystemIdentifier]; !ok || w.Segment < o.Segment {
			oldest[m.SystemIdentifier] = w
		}
	}
	noBase := map[string]int{}
	var noBaseOrder []string
	for _, s := range all {
		if !IsPostgres(s.Metadata) || s.Metadata["type"] != TypeWAL {
			continue
		}
		x.Archives++
		m, err := ParseMetadata(s.Metadata)
		if err == nil && (m.SystemIdentifier == "" || m.WALLast == "") {
			err = fmt.Errorf("no system_identifier or wal_last")
		}
		if err != nil {
			x.Notes = append(x.Notes, fmt.Sprintf("WAL archive snapshot %s cannot be read (%v): kept", short(s.ID), err))
			continue
		}
		if blockAll || blocked[m.SystemIdentifier] {
			continue
		}
		start, ok := oldest[m.SystemIdentifier]
		if !ok {
			if noBase[m.SystemIdentifier] == 0 {
				noBaseOrder = append(noBaseOrder, m.SystemIdentifier)
			}
			noBase[m.SystemIdentifier]++
			continue
		}
		last, _ := ParseWALName(m.WALLast) // checked by ParseMetadata
		if last.Kind == WALHistory {
			continue
		}
		if last.Segment < start.Segment {
			x.Expired = append(x.Expired, source.Expired{ID: s.ID, Why: fmt.Sprintf("(WAL %s..%s)", m.WALFirst, m.WALLast)})
		}
	}
	for _, sys := range noBaseOrder {
		x.Notes = append(x.Notes, fmt.Sprintf("system %s has no base backup: its %d WAL archive snapshot(s) are kept", sys, noBase[sys]))
	}
	return x
}

// short is a snapshot ID as messages show it.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
