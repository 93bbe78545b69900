package postgres

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

// DefaultSegmentSize is PostgreSQL's default WAL segment size.
const DefaultSegmentSize = 16 << 20

// SegmentName is the name of the WAL segment of timeline tli holding
// lsn, for WAL segments of segSize bytes (0: 16 MiB).
func SegmentName(tli uint32, lsn, segSize uint64) string {
	if segSize == 0 {
		segSize = DefaultSegmentSize
	}
	n := lsn / segSize
	per := uint64(0x100000000) / segSize
	return fmt.Sprintf("%08X%08X%08X", tli, n/per, n%per)
}

// segNo is the absolute number of the segment s (log<<32 | seg).
func segNo(s, segSize uint64) uint64 {
	per := uint64(0x100000000) / segSize
	return s>>32*per + s&0xffffffff
}

func segName(tli uint32, n, segSize uint64) string {
	per := uint64(0x100000000) / segSize
	return fmt.Sprintf("%08X%08X%08X", tli, n/per, n%per)
}

// WALGap is a range of WAL segments missing from the archive, First to
// Last inclusive, on the timeline of the segment before it.
type WALGap struct {
	Timeline   uint32 `json:"timeline"`
	First      string `json:"first"`
	Last       string `json:"last"`
	Count      uint64 `json:"count"`
	AfterName  string `json:"after"`  // the last archived segment before the gap
	BeforeName string `json:"before"` // the first archived segment after it
	to         uint64 // the last missing segment's number
}

func (g WALGap) String() string {
	if g.Count == 1 {
		return fmt.Sprintf("%s missing", g.First)
	}
	return fmt.Sprintf("%s..%s missing (%d segments)", g.First, g.Last, g.Count)
}

// ArchiveSummary is what a WAL archive holds, as pg info shows it.
type ArchiveSummary struct {
	First     string   // the first archived segment ("" for none)
	Last      string   // the last one (a partial counts)
	Timelines []uint32 // of the segments, ascending
	Segments  int      // distinct segments (a partial standing in for a missing one counts)
	Histories int      // timeline history files
	Gaps      []WALGap // missing ranges between First and Last
	LastTime  time.Time
	present   map[uint64]bool
	segSize   uint64
}

// Continuous reports whether the archive has no gap.
func (s *ArchiveSummary) Continuous() bool { return len(s.Gaps) == 0 }

// ContinuousFrom reports whether every segment from name (a segment
// name) to the last archived one is there.
func (s *ArchiveSummary) ContinuousFrom(name string) bool {
	w, err := ParseWALName(name)
	if err != nil || s.First == "" || w.Kind != WALSegment {
		return false
	}
	n := segNo(w.Segment, s.segSize)
	if !s.present[n] {
		return false
	}
	for _, g := range s.Gaps {
		if g.to >= n {
			return false
		}
	}
	return true
}

// AnalyzeArchive summarises the archived files (segments, partials,
// history files): first and last segment, timelines, and every gap. A
// segment counts as present when any timeline has it (after a timeline
// switch, the new timeline continues the old one's numbering); a partial
// stands in for its segment. files' Ref must be an ArchiveRef for
// LastTime (the time of the snapshot holding the last segment).
func AnalyzeArchive(files []WALFile, segSize uint64) ArchiveSummary {
	if segSize == 0 {
		segSize = DefaultSegmentSize
	}
	s := ArchiveSummary{present: map[uint64]bool{}, segSize: segSize}
	tliOf := map[uint64]uint32{}
	tlis := map[uint32]bool{}
	names := map[string]bool{}
	var firstNo, lastNo uint64
	for _, f := range files {
		switch f.Kind {
		case WALHistory:
			if !names[f.Name] {
				s.Histories++
				names[f.Name] = true
			}
			continue
		case WALSegment, WALPartial:
		default:
			continue
		}
		n := segNo(f.Segment, segSize)
		tlis[f.Timeline] = true
		name := segName(f.Timeline, n, segSize)
		if !s.present[n] || f.Timeline > tliOf[n] {
			tliOf[n] = f.Timeline
		}
		s.present[n] = true
		if s.First == "" || n < firstNo || n == firstNo && name < s.First {
			s.First, firstNo = name, n
		}
		if s.Last == "" || n > lastNo || n == lastNo && name > s.Last {
			s.Last, lastNo = name, n
			if ref, ok := f.Ref.(ArchiveRef); ok {
				s.LastTime = ref.Snapshot.Time
			}
		} else if n == lastNo {
			if ref, ok := f.Ref.(ArchiveRef); ok && ref.Snapshot.Time.After(s.LastTime) {
				s.LastTime = ref.Snapshot.Time
			}
		}
	}
	for t := range tlis {
		s.Timelines = append(s.Timelines, t)
	}
	slices.Sort(s.Timelines)
	s.Segments = len(s.present)
	if s.First == "" {
		return s
	}
	nums := make([]uint64, 0, len(s.present))
	for n := range s.present {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	for i := 1; i < len(nums); i++ {
		prev, next := nums[i-1], nums[i]
		if next == prev+1 {
			continue
		}
		tli := tliOf[prev]
		s.Gaps = append(s.Gaps, WALGap{Timeline: tli, First: segName(tli, prev+1, segSize), Last: segName(tli, next-1, segSize),
			Count: next - prev - 1, AfterName: segName(tli, prev, segSize), BeforeName: segName(tliOf[next], next, segSize),
			to: next - 1})
	}
	return s
}

func mustSeg(name string) uint64 {
	w, _ := ParseWALName(name)
	return w.Segment
}

// BaseBackup is one physical backup as pg info shows it.
type BaseBackup struct {
	ID        string
	Kind      string
	Time      time.Time // the snapshot's: when the backup started
	End       time.Time // when it ended (the snapshot's time when unknown)
	Host      string
	Server    string
	Version   string
	Timeline  uint32
	StartLSN  string
	StopLSN   string
	StartWAL  string
	StopWAL   string
	WALMethod string
	Size      int64
}

// LogicalDump is one logical backup as pg info shows it.
type LogicalDump struct {
	ID        string
	Time      time.Time
	Host      string
	Server    string
	Version   string
	Databases string
	Size      int64
}

// ServerReport is what the repository holds of one PostgreSQL server:
// a system identifier, or a server (host:port) for logical dumps that
// did not record one.
type ServerReport struct {
	SystemIdentifier string
	Servers          []string // host:port as the backups recorded them
	Hosts            []string // the machines the backups ran on
	BaseBackups      []BaseBackup
	LogicalDumps     []LogicalDump
	Archive          ArchiveSummary
	// OldestRecoverable is the end of the oldest base backup from which
	// recovery can reach the end of the archive (zero for none);
	// NewestRecoverable the time of the last archived segment (or of the
	// newest base backup, when later).
	OldestRecoverable, NewestRecoverable time.Time
}

// SnapshotStats gives a snapshot's size in bytes and the time its backup
// ended (zero when unknown).
type SnapshotStats func(id string) (size int64, end time.Time)

// Report describes, per server, the PostgreSQL snapshots among all
// (oldest first): base backups, logical dumps and the WAL archive's
// continuity. stats may be nil. Snapshots whose metadata does not parse
// are left out.
func Report(all []source.SnapshotInfo, stats SnapshotStats) []ServerReport {
	if stats == nil {
		stats = func(string) (int64, time.Time) { return 0, time.Time{} }
	}
	size := func(id string) int64 { n, _ := stats(id); return n }
	var order []string
	byKey := map[string]*ServerReport{}
	get := func(key string) *ServerReport {
		r := byKey[key]
		if r == nil {
			r = &ServerReport{}
			byKey[key] = r
			order = append(order, key)
		}
		return r
	}
	add := func(list []string, v string) []string {
		if v == "" || slices.Contains(list, v) {
			return list
		}
		return append(list, v)
	}
	// Which system a host:port belongs to, for logical dumps without one.
	sysOf := map[string]string{}
	for _, s := range all {
		if m, err := ParseMetadata(s.Metadata); err == nil && m.SystemIdentifier != "" && m.Server != "" {
			sysOf[m.Server] = m.SystemIdentifier
		}
	}
	for _, s := range all {
		if !IsPostgres(s.Metadata) {
			continue
		}
		m, err := ParseMetadata(s.Metadata)
		if err != nil {
			continue
		}
		sys := m.SystemIdentifier
		if sys == "" {
			sys = sysOf[m.Server]
		}
		key := "system " + sys
		if sys == "" {
			key = "server " + m.Server
		}
		r := get(key)
		r.SystemIdentifier = sys
		r.Servers = add(r.Servers, m.Server)
		if m.Type != TypeWAL {
			r.Hosts = add(r.Hosts, s.Host)
		}
		switch m.Type {
		case TypePhysical:
			_, end := stats(s.ID)
			if end.Before(s.Time) {
				end = s.Time
			}
			b := BaseBackup{ID: s.ID, Kind: s.Kind, Time: s.Time, End: end, Host: s.Host, Server: m.Server, Version: m.ServerVersion,
				Timeline: m.Timeline, StartLSN: m.StartLSN, StopLSN: m.StopLSN, StartWAL: m.StartWALFile, WALMethod: m.WALMethod, Size: size(s.ID)}
			if lsn, err := ParseLSN(m.StopLSN); err == nil && m.StopLSN != "" && m.Timeline != 0 {
				b.StopWAL = SegmentName(m.Timeline, lsn, 0)
			}
			r.BaseBackups = append(r.BaseBackups, b)
		case TypeLogical:
			r.LogicalDumps = append(r.LogicalDumps, LogicalDump{ID: s.ID, Time: s.Time, Host: s.Host, Server: m.Server,
				Version: m.ServerVersion, Databases: m.Databases, Size: size(s.ID)})
		}
	}
	out := make([]ServerReport, 0, len(order))
	for _, key := range order {
		r := byKey[key]
		if r.SystemIdentifier != "" {
			r.Archive = AnalyzeArchive(ArchiveFiles(all, r.SystemIdentifier), 0)
		}
		r.OldestRecoverable, r.NewestRecoverable = recoverable(r.BaseBackups, &r.Archive)
		out = append(out, *r)
	}
	// Systems first (by identifier), then servers known only by address.
	slices.SortStableFunc(out, func(x, y ServerReport) int {
		if (x.SystemIdentifier == "") != (y.SystemIdentifier == "") {
			if x.SystemIdentifier == "" {
				return 1
			}
			return -1
		}
		return strings.Compare(x.SystemIdentifier+strings.Join(x.Servers, ","), y.SystemIdentifier+strings.Join(y.Servers, ","))
	})
	return out
}

// recoverable is the window of point-in-time recovery: from the end of
// the oldest base backup whose WAL is continuous from its start to the
// end of the archive, to the last archived segment's time. A backup that
// holds its own WAL (wal_method fetch) and that the archive does not
// reach is recoverable to its own end only.
func recoverable(backups []BaseBackup, a *ArchiveSummary) (oldest, newest time.Time) {
	for _, b := range backups {
		if b.StartWAL == "" {
			continue
		}
		ok, selfOnly := a.ContinuousFrom(b.StartWAL), false
		if !ok && b.WALMethod == "fetch" && b.StopWAL != "" {
			// The backup's own WAL is in it: the archive must go on from
			// the segment after its end, or not reach past it at all.
			stop := segNo(mustSeg(b.StopWAL), a.segSize)
			if a.First == "" || segNo(mustSeg(a.Last), a.segSize) <= stop {
				ok, selfOnly = true, true
			} else {
				ok = a.ContinuousFrom(segName(segTLI(b.StopWAL), stop+1, a.segSize))
			}
		}
		if !ok {
			continue
		}
		if oldest.IsZero() || b.End.Before(oldest) {
			oldest = b.End
		}
		end := b.End
		if !selfOnly && a.LastTime.After(end) {
			end = a.LastTime
		}
		if end.After(newest) {
			newest = end
		}
	}
	return oldest, newest
}

func segTLI(name string) uint32 {
	w, _ := ParseWALName(name)
	return w.Timeline
}
