package mysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// BinlogPos is a position in a server's binary log: the file name and the
// byte offset of the next event.
type BinlogPos struct {
	File string
	Pos  uint64
}

func (p BinlogPos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Pos) }

// IsZero reports whether no position is known.
func (p BinlogPos) IsZero() bool { return p.File == "" }

// Before reports whether p comes before q in the log (same base name).
func (p BinlogPos) Before(q BinlogPos) bool {
	_, pn, _ := ParseBinlogName(p.File)
	_, qn, _ := ParseBinlogName(q.File)
	if pn != qn {
		return pn < qn
	}
	return p.Pos < q.Pos
}

// ParsePosition reads "FILE:POS" (binlog.000042:1234).
func ParsePosition(s string) (BinlogPos, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return BinlogPos{}, fmt.Errorf("binlog position %q: want FILE:POS, e.g. binlog.000042:1234", s)
	}
	if _, _, err := ParseBinlogName(s[:i]); err != nil {
		return BinlogPos{}, fmt.Errorf("binlog position %q: %w", s, err)
	}
	n, err := strconv.ParseUint(s[i+1:], 10, 64)
	if err != nil || n < 4 {
		return BinlogPos{}, fmt.Errorf("binlog position %q: %q is not an offset in the file", s, s[i+1:])
	}
	return BinlogPos{File: s[:i], Pos: n}, nil
}

// ParseBinlogName splits a binary log file name, "binlog.000042", into its
// base name and sequence number. It accepts only names that are safe as
// file names and command-line arguments: letters, digits, '_', '-' and
// '.', not starting with '.' or '-'.
func ParseBinlogName(name string) (base string, num uint64, err error) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 || len(name) > 200 {
		return "", 0, fmt.Errorf("%q is not a binary log file name (want BASE.NUMBER, e.g. binlog.000042)", name)
	}
	for j := 0; j < len(name); j++ {
		c := name[j]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok || j == 0 && (c == '.' || c == '-') {
			return "", 0, fmt.Errorf("%q is not a binary log file name (unexpected %q)", name, c)
		}
	}
	digits := name[i+1:]
	for j := 0; j < len(digits); j++ {
		if digits[j] < '0' || digits[j] > '9' {
			return "", 0, fmt.Errorf("%q is not a binary log file name (want BASE.NUMBER)", name)
		}
	}
	num, err = strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not a binary log file name: %w", name, err)
	}
	return name[:i], num, nil
}

// binlogNum is the sequence number of a name ParseBinlogName accepted.
func binlogNum(name string) uint64 {
	_, n, _ := ParseBinlogName(name)
	return n
}

// maxScanLine is how much of a line the scanners keep: the lines they
// look for are short, data lines can be megabytes long.
const maxScanLine = 1024

// lineWriter calls fn with every line written to it (without the newline,
// cut to maxScanLine bytes, truncated=true when longer).
type lineWriter struct {
	fn        func(line []byte, truncated bool)
	buf       []byte
	truncated bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if room := maxScanLine - len(w.buf); room > 0 {
			if len(part) > room {
				w.buf = append(w.buf, part[:room]...)
				w.truncated = true
			} else {
				w.buf = append(w.buf, part...)
			}
		} else if len(part) > 0 {
			w.truncated = true
		}
		if i < 0 {
			break
		}
		w.fn(bytes.TrimSuffix(w.buf, []byte("\r")), w.truncated)
		w.buf, w.truncated = w.buf[:0], false
		p = p[i+1:]
	}
	return n, nil
}

// Flush hands a last line that had no newline to fn.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 || w.truncated {
		w.fn(bytes.TrimSuffix(w.buf, []byte("\r")), w.truncated)
		w.buf, w.truncated = w.buf[:0], false
	}
}

// dumpScanner watches a mariadb-dump or mysqldump stream go past (as the
// writer of an io.TeeReader) and picks out the binlog position the dump is
// consistent with, from the commented CHANGE MASTER line that
// --master-data=2 writes among the leading comments, the GTID position
// MariaDB's --gtid writes near the end, and whether the dump's last line
// is its completion trailer.
//
// Only the leading comment block counts for the position: a line in a
// routine's body further down cannot fake it.
type dumpScanner struct {
	lw       lineWriter
	inHeader bool
	lines    int64

	Pos       BinlogPos
	GTID      string
	Completed bool // the last non-empty line is "-- Dump completed…"
}

func newDumpScanner() *dumpScanner {
	s := &dumpScanner{inHeader: true}
	s.lw.fn = s.line
	return s
}

func (s *dumpScanner) Write(p []byte) (int, error) { return s.lw.Write(p) }

// Finish processes an unterminated last line.
func (s *dumpScanner) Finish() { s.lw.Flush() }

func (s *dumpScanner) line(b []byte, truncated bool) {
	s.lines++
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return
	}
	s.Completed = !truncated && bytes.HasPrefix(t, []byte("-- Dump completed"))
	if s.inHeader {
		if !bytes.HasPrefix(t, []byte("--")) && !bytes.HasPrefix(t, []byte("/*")) {
			s.inHeader = false
		} else if s.Pos.IsZero() && !truncated {
			if p, ok := parseChangeMaster(string(t)); ok {
				s.Pos = p
			}
		}
	}
	// Only comment and SET lines can carry the GTID; the data lines
	// (most of the stream) are not converted or parsed.
	if !truncated && (t[0] == '-' || t[0] == 'S' || t[0] == 's') {
		if g, ok := parseGTIDLine(string(t)); ok {
			s.GTID = g
		}
	}
}

// parseChangeMaster reads
//
//	-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000001', MASTER_LOG_POS=1088;
//	-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000001', SOURCE_LOG_POS=157;
//
// (with or without the comment marker). Lines without a file and a
// position (MASTER_USE_GTID=slave_pos) are not positions.
func parseChangeMaster(line string) (BinlogPos, bool) {
	s := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "--"))
	rest, ok := cutPrefixFold(s, "CHANGE MASTER TO ")
	if !ok {
		if rest, ok = cutPrefixFold(s, "CHANGE REPLICATION SOURCE TO "); !ok {
			return BinlogPos{}, false
		}
	}
	rest = strings.TrimSpace(rest)
	rest, ok = strings.CutSuffix(rest, ";")
	if !ok {
		return BinlogPos{}, false
	}
	var p BinlogPos
	havePos := false
	for rest != "" {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			return BinlogPos{}, false
		}
		key = strings.ToUpper(strings.TrimSpace(key))
		after = strings.TrimSpace(after)
		var val string
		if strings.HasPrefix(after, "'") {
			end := strings.IndexByte(after[1:], '\'')
			if end < 0 {
				return BinlogPos{}, false
			}
			val, after = after[1:1+end], after[2+end:]
		} else {
			end := strings.IndexByte(after, ',')
			if end < 0 {
				end = len(after)
			}
			val, after = strings.TrimSpace(after[:end]), after[end:]
		}
		after = strings.TrimSpace(after)
		if after != "" {
			if after[0] != ',' {
				return BinlogPos{}, false
			}
			after = strings.TrimSpace(after[1:])
		}
		rest = after
		switch key {
		case "MASTER_LOG_FILE", "SOURCE_LOG_FILE":
			if _, _, err := ParseBinlogName(val); err != nil {
				return BinlogPos{}, false
			}
			p.File = val
		case "MASTER_LOG_POS", "SOURCE_LOG_POS":
			n, err := strconv.ParseUint(val, 10, 64)
			if err != nil {
				return BinlogPos{}, false
			}
			p.Pos, havePos = n, true
		}
	}
	if p.File == "" || !havePos {
		return BinlogPos{}, false
	}
	return p, true
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// parseGTIDLine reads MariaDB's "-- SET GLOBAL gtid_slave_pos='0-1-5';".
func parseGTIDLine(line string) (string, bool) {
	s := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "--"))
	rest, ok := cutPrefixFold(s, "SET GLOBAL gtid_slave_pos=")
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	if len(rest) < 3 || rest[0] != '\'' {
		return "", false
	}
	end := strings.IndexByte(rest[1:], '\'')
	if end < 0 {
		return "", false
	}
	g := rest[1 : 1+end]
	if !validGTID(g) {
		return "", false
	}
	return g, true
}

// validGTID accepts a GTID set as MariaDB (0-1-5,1-2-7) or MySQL
// (uuid:1-5,…) print it: no quotes, spaces or control characters.
func validGTID(g string) bool {
	if len(g) > 4096 {
		return false
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '-' || c == ',' || c == ':') {
			return false
		}
	}
	return true
}

// backupLogScanner reads mariadb-backup's (or xtrabackup's) standard
// error as it is written and keeps the binlog position it reports:
//
//	[00] 2026-11-26 11:02:45 MySQL binlog position: filename 'binlog.000001', position '1088', GTID of the last change '0-1-5'
type backupLogScanner struct {
	lw        lineWriter
	Pos       BinlogPos
	GTID      string
	Completed bool // "completed OK!" was the last line seen
}

func newBackupLogScanner() *backupLogScanner {
	s := &backupLogScanner{}
	s.lw.fn = s.line
	return s
}

func (s *backupLogScanner) Write(p []byte) (int, error) { return s.lw.Write(p) }

func (s *backupLogScanner) line(b []byte, truncated bool) {
	t := string(bytes.TrimSpace(b))
	if t == "" {
		return
	}
	s.Completed = strings.HasSuffix(t, "completed OK!")
	if truncated {
		return
	}
	if p, g, ok := parseBackupPosition(t); ok {
		s.Pos, s.GTID = p, g
	}
}

// parseBackupPosition reads the "MySQL binlog position:" line.
func parseBackupPosition(line string) (BinlogPos, string, bool) {
	const marker = "MySQL binlog position: "
	i := strings.Index(line, marker)
	if i < 0 {
		return BinlogPos{}, "", false
	}
	rest := line[i+len(marker):]
	file, rest, ok := quotedAfter(rest, "filename ")
	if !ok {
		return BinlogPos{}, "", false
	}
	pos, rest, ok := quotedAfter(rest, "position ")
	if !ok {
		return BinlogPos{}, "", false
	}
	if _, _, err := ParseBinlogName(file); err != nil {
		return BinlogPos{}, "", false
	}
	n, err := strconv.ParseUint(pos, 10, 64)
	if err != nil {
		return BinlogPos{}, "", false
	}
	gtid, _, ok := quotedAfter(rest, "GTID of the last change ")
	if !ok || !validGTID(gtid) {
		gtid = ""
	}
	return BinlogPos{File: file, Pos: n}, gtid, true
}

// quotedAfter finds key followed by a single-quoted value in s and returns
// the value and what follows it.
func quotedAfter(s, key string) (val, rest string, ok bool) {
	i := strings.Index(s, key+"'")
	if i < 0 {
		return "", s, false
	}
	s = s[i+len(key)+1:]
	end := strings.IndexByte(s, '\'')
	if end < 0 {
		return "", s, false
	}
	return s[:end], s[end+1:], true
}

// Binary log files start with this magic number.
var binlogMagic = []byte{0xfe, 'b', 'i', 'n'}

// binlogEventHeader is the size of a v4 event header: timestamp (4),
// type (1), server id (4), event size (4), next position (4), flags (2).
const binlogEventHeader = 19

// binlogScan summarises a binary log file.
type binlogScan struct {
	End         int64  // offset after the last complete event
	Events      int64  // complete events
	First, Last uint32 // Unix seconds of the first and last event that carry a time
	Trailing    int64  // bytes after End (an event still being written)
}

// scanBinlog walks the event headers of a binary log file (as the server
// writes it and mariadb-binlog --raw copies it) without reading the
// events' bodies when r can seek. A file that ends inside an event is not
// an error: Trailing says how much of it there is. Anything that is not a
// binary log is.
func scanBinlog(r io.Reader) (binlogScan, error) {
	var s binlogScan
	var hdr [binlogEventHeader]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return s, errors.New("not a binary log: shorter than its magic number")
		}
		return s, err
	}
	if !bytes.Equal(hdr[:4], binlogMagic) {
		return s, errors.New("not a binary log: wrong magic number")
	}
	s.End = 4
	for {
		n, err := io.ReadFull(r, hdr[:])
		if err != nil {
			if errors.Is(err, io.EOF) {
				return s, nil
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				s.Trailing = int64(n)
				return s, nil
			}
			return s, err
		}
		ts := binary.LittleEndian.Uint32(hdr[0:])
		size := int64(binary.LittleEndian.Uint32(hdr[9:]))
		next := int64(binary.LittleEndian.Uint32(hdr[13:]))
		if size < binlogEventHeader {
			return s, fmt.Errorf("corrupt binary log: event at offset %d has size %d", s.End, size)
		}
		// The next-position field is the offset after the event, modulo
		// 4 GiB (it is 32 bits); 0 marks events with no position.
		if next != 0 && next != (s.End+size)&0xffffffff {
			return s, fmt.Errorf("corrupt binary log: event at offset %d of size %d says the next one is at %d", s.End, size, next)
		}
		body := size - binlogEventHeader
		got, err := skip(r, body)
		if err != nil {
			return s, err
		}
		if got < body {
			s.Trailing = binlogEventHeader + got
			return s, nil
		}
		s.End += size
		s.Events++
		if ts != 0 {
			if s.First == 0 {
				s.First = ts
			}
			s.Last = ts
		}
	}
}

// skip discards n bytes of r (seeking when it can) and returns how many
// there were.
func skip(r io.Reader, n int64) (int64, error) {
	if sk, ok := r.(io.ReadSeeker); ok {
		cur, err := sk.Seek(0, io.SeekCurrent)
		if err == nil {
			end, err := sk.Seek(0, io.SeekEnd)
			if err != nil {
				return 0, err
			}
			to := min(cur+n, end)
			if _, err := sk.Seek(to, io.SeekStart); err != nil {
				return 0, err
			}
			return to - cur, nil
		}
	}
	got, err := io.CopyN(io.Discard, r, n)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return got, err
}

// binlogIndexEntry describes one file of an archive snapshot in its
// metadata: name, size and the times of its first and last events.
type binlogIndexEntry struct {
	Name        string
	Size        int64
	First, Last int64 // Unix seconds, 0 when unknown
}

// formatBinlogIndex writes entries as "name size first last;…", the
// metadata value binlog_index.
func formatBinlogIndex(es []binlogIndexEntry) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = fmt.Sprintf("%s %d %d %d", e.Name, e.Size, e.First, e.Last)
	}
	return strings.Join(parts, ";")
}

// parseBinlogIndex reads what formatBinlogIndex wrote.
func parseBinlogIndex(s string) ([]binlogIndexEntry, error) {
	if s == "" {
		return nil, nil
	}
	var out []binlogIndexEntry
	for _, part := range strings.Split(s, ";") {
		f := strings.Fields(part)
		if len(f) != 4 {
			return nil, fmt.Errorf("binlog index entry %q: want NAME SIZE FIRST LAST", part)
		}
		if _, _, err := ParseBinlogName(f[0]); err != nil {
			return nil, err
		}
		var nums [3]int64
		for i, v := range f[1:] {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("binlog index entry %q: %q is not a number", part, v)
			}
			nums[i] = n
		}
		out = append(out, binlogIndexEntry{Name: f[0], Size: nums[0], First: nums[1], Last: nums[2]})
	}
	return out, nil
}
