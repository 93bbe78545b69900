package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/bunkerbackup/bunker/internal/source"
)

// WALDir is the directory of WAL archive snapshots' files.
const WALDir = "wal"

// WAL file kinds.
const (
	WALSegment       = "segment"        // 000000010000000A000000FE
	WALPartial       = "partial"        // …FE.partial, from a streaming receiver
	WALHistory       = "history"        // 00000002.history
	WALBackupHistory = "backup-history" // …FE.00000028.backup
)

// WALName is a parsed WAL archive file name.
type WALName struct {
	Name     string
	Kind     string
	Timeline uint32
	Segment  uint64 // log<<32 | seg, for segments, partials and backup histories
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// IsSegmentName reports whether s is a WAL segment file name.
func IsSegmentName(s string) bool { return len(s) == 24 && isHex(s) }

// ParseWALName parses the name of a file PostgreSQL archives.
func ParseWALName(name string) (WALName, error) {
	w := WALName{Name: name}
	bad := fmt.Errorf("%q is not a WAL file name (segment, .partial, .history or .backup)", name)
	switch {
	case IsSegmentName(name):
		w.Kind = WALSegment
	case strings.HasSuffix(name, ".partial") && IsSegmentName(strings.TrimSuffix(name, ".partial")):
		w.Kind = WALPartial
	case len(name) == 16 && strings.HasSuffix(name, ".history") && isHex(name[:8]):
		w.Kind = WALHistory
	case len(name) == 40 && strings.HasSuffix(name, ".backup") && name[24] == '.' && IsSegmentName(name[:24]) && isHex(name[25:33]):
		w.Kind = WALBackupHistory
	default:
		return w, bad
	}
	tli, _ := strconv.ParseUint(name[:8], 16, 32)
	if tli == 0 {
		return w, bad
	}
	w.Timeline = uint32(tli)
	if w.Kind != WALHistory {
		log, _ := strconv.ParseUint(name[8:16], 16, 32)
		seg, _ := strconv.ParseUint(name[16:24], 16, 32)
		w.Segment = log<<32 | seg
	}
	return w, nil
}

// SegmentSystemID reads the system identifier from the long page header
// at the start of a WAL segment (XLogLongPageHeaderData). ok is false
// when the header is not a long one.
func SegmentSystemID(header []byte) (id string, ok bool) {
	const xlpLongHeader = 0x0002
	if len(header) < 40 {
		return "", false
	}
	info := binary.LittleEndian.Uint16(header[2:4])
	if info&xlpLongHeader == 0 {
		return "", false
	}
	sysid := binary.LittleEndian.Uint64(header[24:32])
	segSize := binary.LittleEndian.Uint32(header[32:36])
	blcksz := binary.LittleEndian.Uint32(header[36:40])
	// Sanity: sizes are powers of two in PostgreSQL's ranges.
	if sysid == 0 || segSize < 1<<20 || segSize > 1<<30 || segSize&(segSize-1) != 0 || blcksz < 1024 || blcksz > 65536 || blcksz&(blcksz-1) != 0 {
		return "", false
	}
	return strconv.FormatUint(sysid, 10), true
}

// ControlSystemID reads the system identifier from global/pg_control.
func ControlSystemID(b []byte) (string, error) {
	if len(b) < 8 {
		return "", fmt.Errorf("global/pg_control is too short (%d bytes)", len(b))
	}
	id := binary.LittleEndian.Uint64(b)
	if id == 0 {
		return "", fmt.Errorf("global/pg_control has no system identifier")
	}
	return strconv.FormatUint(id, 10), nil
}

// WALFile is one file available in the archive.
type WALFile struct {
	WALName
	Ref any // where to read it (the caller's)
}

// SelectRecoveryWAL picks, from the archive's files (newest copy of each
// name last), what a recovery from a base backup starting at startFile
// on its timeline needs: every timeline history file, and every segment
// from the start segment on, on that timeline or later ones. A partial
// segment stands in for its full segment only when the full one is
// missing. The result is sorted by name, each name once, partials
// renamed to the segment name they stand for.
func SelectRecoveryWAL(files []WALFile, startFile string) ([]WALFile, error) {
	start, err := ParseWALName(startFile)
	if err != nil || start.Kind != WALSegment {
		return nil, fmt.Errorf("start WAL file %q is not a segment", startFile)
	}
	byName := map[string]WALFile{}
	partial := map[string]WALFile{}
	for _, f := range files {
		switch f.Kind {
		case WALHistory:
			if f.Timeline > start.Timeline {
				byName[f.Name] = f
			}
		case WALSegment:
			if f.Timeline >= start.Timeline && f.Segment >= start.Segment {
				byName[f.Name] = f
			}
		case WALPartial:
			if f.Timeline >= start.Timeline && f.Segment >= start.Segment {
				f.Name = strings.TrimSuffix(f.Name, ".partial")
				f.Kind = WALSegment
				partial[f.Name] = f
			}
		}
	}
	for name, f := range partial {
		if _, ok := byName[name]; !ok {
			byName[name] = f
		}
	}
	out := make([]WALFile, 0, len(byName))
	for _, f := range byName {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CheckContinuity returns an error naming the first missing segment when
// the segments of timeline tli from start on have a gap. segSize is the
// WAL segment size in bytes (16 MiB by default).
func CheckContinuity(files []WALFile, startFile string, segSize uint64) error {
	start, err := ParseWALName(startFile)
	if err != nil {
		return err
	}
	if segSize == 0 {
		segSize = 16 << 20
	}
	segsPerLog := uint64(0x100000000) / segSize
	have := map[uint64]bool{}
	var last uint64
	for _, f := range files {
		if f.Kind == WALSegment && f.Timeline == start.Timeline {
			n := f.Segment>>32*segsPerLog + f.Segment&0xffffffff
			have[n] = true
			last = max(last, n)
		}
	}
	first := start.Segment>>32*segsPerLog + start.Segment&0xffffffff
	if !have[first] {
		return fmt.Errorf("the archive lacks %s, the first segment the base backup needs", startFile)
	}
	for n := first; n <= last; n++ {
		if !have[n] {
			return fmt.Errorf("the archive lacks segment %08X%08X%08X: recovery would stop there", start.Timeline, n/segsPerLog, n%segsPerLog)
		}
	}
	return nil
}

// ArchiveSystemID checks the names of the WAL files at paths and tells
// which cluster they belong to: sysid when given (it must be a number),
// else the system identifier in the long header of the first segment
// among them that has one, else the one in controlFile
// (global/pg_control of the data directory archive_command runs in).
func ArchiveSystemID(paths []string, sysid, controlFile string) (string, error) {
	for _, p := range paths {
		w, err := ParseWALName(filepath.Base(p))
		if err != nil {
			return "", err
		}
		if sysid == "" && (w.Kind == WALSegment || w.Kind == WALPartial) {
			sysid = segmentFileSystemID(p)
		}
	}
	if sysid == "" {
		b, err := os.ReadFile(controlFile)
		if err != nil {
			return "", errors.New("cannot tell the cluster's system identifier: no WAL segment header and no global/pg_control here; give --system-id")
		}
		if sysid, err = ControlSystemID(b); err != nil {
			return "", err
		}
	}
	if _, err := strconv.ParseUint(sysid, 10, 64); err != nil {
		return "", fmt.Errorf("--system-id %q is not a number", sysid)
	}
	return sysid, nil
}

// segmentFileSystemID reads the system identifier from the header of the
// segment file p, "" when it has none.
func segmentFileSystemID(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	hdr := make([]byte, 40)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return ""
	}
	id, _ := SegmentSystemID(hdr)
	return id
}

// ArchiveWAL stores the WAL files at paths (segments, partial segments,
// history and backup history files of the cluster sysid) under WALDir
// of sink and returns the archive snapshot's metadata. A file that
// changes size while it is read fails the archive.
func ArchiveWAL(ctx context.Context, sink source.Sink, paths []string, sysid string) (Metadata, error) {
	var names []string
	for _, p := range paths {
		w, err := ParseWALName(filepath.Base(p))
		if err != nil {
			return Metadata{}, err
		}
		names = append(names, w.Name)
	}
	if len(names) == 0 {
		return Metadata{}, errors.New("no WAL file to archive")
	}
	for _, p := range paths {
		if err := archiveFile(ctx, sink, p); err != nil {
			return Metadata{}, err
		}
	}
	first, last := slices.Min(names), slices.Max(names)
	w0, _ := ParseWALName(first)
	return Metadata{Type: TypeWAL, SystemIdentifier: sysid, Timeline: w0.Timeline,
		WALFirst: first, WALLast: last, WALFiles: names}, nil
}

func archiveFile(ctx context.Context, sink source.Sink, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	n, err := sink.WriteFile(ctx, WALDir+"/"+filepath.Base(p), f, &source.Meta{Mode: 0o600, ModTime: fi.ModTime()})
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if n != fi.Size() {
		return fmt.Errorf("%s: read %d bytes, expected %d (file changed while archived)", p, n, fi.Size())
	}
	return nil
}
