package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

// ArchiveOptions configure ArchiveBinlogs.
type ArchiveOptions struct {
	// SpoolDir is where mariadb-binlog writes its copies (created; files
	// are removed once pushed as complete). Required.
	SpoolDir string
	// Interval is how often the growing active file is pushed (default
	// 10 s).
	Interval time.Duration
	// ServerID is the replica server id mariadb-binlog presents
	// (--stop-never-slave-server-id); 0 leaves the tool's default. It must
	// differ from every other replica's.
	ServerID uint32
	// Once archives everything up to now and returns: FLUSH BINARY LOGS,
	// copy until the copy has caught up, push, stop.
	Once bool
	// Archived is what the repository already holds for this server; the
	// copy starts after the newest complete file.
	Archived []BinlogFile
	// Push stores files; it must not return before they are committed.
	Push func(ctx context.Context, p Push) error
	// CatchUp bounds how long a round waits for the copy to reach the
	// server's position (default 30 s with Once, else Interval).
	CatchUp time.Duration
	// Heartbeat: when nothing was written, push anyway this often, so
	// that the archive records how far it is known to be complete
	// (default the larger of a minute and Interval).
	Heartbeat time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Validate checks the options and fills in defaults.
func (o *ArchiveOptions) Validate() error {
	if o.SpoolDir == "" {
		return errors.New("binlog archive: no spool directory")
	}
	if o.Push == nil {
		return errors.New("binlog archive: no push function")
	}
	if o.Interval == 0 {
		o.Interval = 10 * time.Second
	}
	if o.Interval < 0 {
		return fmt.Errorf("interval %v is negative", o.Interval)
	}
	if o.CatchUp == 0 {
		o.CatchUp = o.Interval
		if o.Once {
			o.CatchUp = 30 * time.Second
		}
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = max(time.Minute, o.Interval)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Push is one batch of files for the archive.
type Push struct {
	// Files in log order: complete files, then maybe the active one
	// (Partial).
	Files []PushFile
	// Until: every event written before it is in these files or in
	// earlier pushes (zero when not known).
	Until time.Time
}

// PushFile is a spooled binlog file to store.
type PushFile struct {
	Name    string
	Path    string // in the spool
	Size    int64  // the bytes to store: whole events only
	Partial bool   // the server is still writing it
	// First and Last are the times of its first and last events.
	First, Last time.Time
}

// Open reads the first Size bytes of the file.
func (f PushFile) Open() (io.ReadCloser, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(fh, f.Size), fh}, nil
}

// SpoolSubdir is the directory of one server's copies under a spool
// directory: the server's name with anything unusual replaced.
func SpoolSubdir(server string) string {
	b := []byte(server)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	return "server_" + string(b)
}

// BinaryLogs lists the server's binary log files (SHOW BINARY LOGS), in
// order.
func (s *Source) BinaryLogs(ctx context.Context) ([]string, error) {
	rows, err := s.showRows(ctx, "SHOW BINARY LOGS")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rows {
		if _, _, err := ParseBinlogName(r["Log_name"]); err != nil {
			return nil, fmt.Errorf("SHOW BINARY LOGS: %w", err)
		}
		out = append(out, r["Log_name"])
	}
	return out, nil
}

// MasterStatus is where the server is writing its binary log now.
func (s *Source) MasterStatus(ctx context.Context) (BinlogPos, error) {
	rows, err := s.showRows(ctx, "SHOW MASTER STATUS")
	if err != nil && s.Info.Flavour == MySQL {
		// MySQL 8.4 renamed it.
		rows, err = s.showRows(ctx, "SHOW BINARY LOG STATUS")
	}
	if err != nil {
		return BinlogPos{}, err
	}
	if len(rows) == 0 {
		return BinlogPos{}, fmt.Errorf("%s: binary logging is off", s.Server())
	}
	f := rows[0]["File"]
	if _, _, err := ParseBinlogName(f); err != nil {
		return BinlogPos{}, fmt.Errorf("SHOW MASTER STATUS: %w", err)
	}
	n, err := strconv.ParseUint(rows[0]["Position"], 10, 64)
	if err != nil {
		return BinlogPos{}, fmt.Errorf("SHOW MASTER STATUS: position %q: %w", rows[0]["Position"], err)
	}
	return BinlogPos{File: f, Pos: n}, nil
}

// showRows runs a SHOW statement and returns its rows by column name.
func (s *Source) showRows(ctx context.Context, q string) ([]map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s.Server(), q, s.conn.redact(err))
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for rows.Next() {
		vals, err := scanStrings(rows, len(cols))
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		for i, c := range cols {
			m[c] = vals[i].String
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", s.Server(), q, s.conn.redact(err))
	}
	return out, nil
}

// scanStrings reads the current row's n columns as strings (NULL is not
// Valid).
func scanStrings(rows *sql.Rows, n int) ([]sql.NullString, error) {
	vals := make([]sql.NullString, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	return vals, rows.Scan(ptrs...)
}

// firstToArchive picks the file the copy starts with: the one after the
// newest complete file in the archive, else the server's oldest. warning
// is set when files were purged before they were archived.
func firstToArchive(serverLogs []string, archived []BinlogFile) (first, warning string, err error) {
	if len(serverLogs) == 0 {
		return "", "", errors.New("the server lists no binary logs")
	}
	serverBase, _, _ := ParseBinlogName(serverLogs[0])
	var newest BinlogFile
	for _, a := range archived {
		if a.Complete && (newest.Name == "" || binlogNum(a.Name) > binlogNum(newest.Name)) {
			newest = a
		}
	}
	if newest.Name == "" {
		return serverLogs[0], "", nil
	}
	if base, _, _ := ParseBinlogName(newest.Name); base != serverBase {
		return "", "", fmt.Errorf("the archive holds binary logs named %s.*, the server writes %s.*: archive this server under another --host", base, serverBase)
	}
	for _, n := range serverLogs {
		if binlogNum(n) > binlogNum(newest.Name) {
			first = n
			break
		}
	}
	if first == "" {
		return "", "", fmt.Errorf("the archive already has %s complete, but the server's newest binary log is %s: were the binary logs reset (RESET MASTER)? Archive this server under another --host",
			newest.Name, serverLogs[len(serverLogs)-1])
	}
	if binlogNum(first) != binlogNum(newest.Name)+1 {
		warning = fmt.Sprintf("the binary logs after %s up to %s were purged from the server before they were archived: point-in-time recovery across them is impossible", newest.Name, first)
	}
	return first, warning, nil
}

// spoolFiles lists the binlog copies in dir, in log order.
func spoolFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if _, _, err := ParseBinlogName(e.Name()); err == nil && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		if an, bn := binlogNum(a), binlogNum(b); an != bn {
			if an < bn {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return names, nil
}

// spoolHas reports whether the copy in dir has everything up to pos.
func spoolHas(dir string, pos BinlogPos) bool {
	names, err := spoolFiles(dir)
	if err != nil || len(names) == 0 {
		return false
	}
	last := names[len(names)-1]
	if binlogNum(last) > binlogNum(pos.File) {
		return true
	}
	if last != pos.File {
		return false
	}
	fi, err := os.Stat(filepath.Join(dir, last))
	return err == nil && fi.Size() >= int64(pos.Pos)
}

// archiver is the state of one ArchiveBinlogs run.
type archiver struct {
	o        *ArchiveOptions
	dir      string
	until    time.Time // as far as the copy is known to be complete
	pushedTo time.Time // the until of the last push
	lastPush time.Time
	partial  map[string]int64 // size of the active file last pushed
}

// ArchiveBinlogs copies the server's binary logs into o.SpoolDir with
// mariadb-binlog --read-from-remote-server --raw --stop-never, and pushes
// every file that is complete (the next one exists) and, every Interval,
// the growing active one. It returns when ctx is cancelled (after pushing
// what it has, nil), when the copy stops (the server went away: an
// error), or with Once when it has caught up.
func (s *Source) ArchiveBinlogs(ctx context.Context, o ArchiveOptions) (err error) {
	if err := o.Validate(); err != nil {
		return err
	}
	if !s.Info.LogBin {
		return fmt.Errorf("binary logging is off on %s (start the server with --log-bin): there is nothing to archive", s.Server())
	}
	if _, _, err := findTool(s.opts.ToolDir, toolBinlog); err != nil {
		return err
	}
	logs, err := s.BinaryLogs(ctx)
	if err != nil {
		return err
	}
	first, warning, err := firstToArchive(logs, o.Archived)
	if err != nil {
		return err
	}
	if warning != "" {
		s.warnf("%s", warning)
	}
	if err := os.MkdirAll(o.SpoolDir, 0o700); err != nil {
		return fmt.Errorf("spool directory: %w", err)
	}
	// Copies left by an earlier run are fetched again.
	old, err := spoolFiles(o.SpoolDir)
	if err != nil {
		return fmt.Errorf("spool directory: %w", err)
	}
	for _, n := range old {
		if err := os.Remove(filepath.Join(o.SpoolDir, n)); err != nil {
			return fmt.Errorf("spool directory: %w", err)
		}
	}
	if o.Once {
		// The active file completes, so that everything up to now is in
		// complete files.
		if _, err := s.db.ExecContext(ctx, "FLUSH BINARY LOGS"); err != nil {
			return fmt.Errorf("%s: FLUSH BINARY LOGS: %w", s.Server(), s.conn.redact(err))
		}
	}
	args := []string{"--read-from-remote-server", "--raw", "--stop-never"}
	if o.ServerID != 0 {
		args = append(args, "--stop-never-slave-server-id="+strconv.FormatUint(uint64(o.ServerID), 10))
	}
	args = append(args, "--result-file="+o.SpoolDir+string(os.PathSeparator), first)
	cmd, done, err := s.tool(toolBinlog, args...)
	if err != nil {
		return err
	}
	defer done()
	procCtx, stopProc := context.WithCancel(ctx)
	procDone := make(chan error, 1)
	go func() { procDone <- cmd.Run(procCtx) }()
	a := &archiver{o: &o, dir: o.SpoolDir, partial: map[string]int64{}}
	var procErr error
	procExited := false
	// finish stops the copy and pushes what it has.
	finish := func(err error) error {
		stopProc()
		if !procExited {
			<-procDone
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if perr := a.push(pctx, o.Once); perr != nil {
			return errors.Join(err, perr)
		}
		return err
	}
	ticker := time.NewTicker(o.Interval)
	defer ticker.Stop()
	for {
		t0 := o.Now()
		pos, err := s.MasterStatus(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return finish(nil)
			}
			return finish(err)
		}
		caught := spoolHas(o.SpoolDir, pos)
		deadline := time.Now().Add(o.CatchUp)
		for !caught && time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return finish(nil)
			case procErr = <-procDone:
				procExited = true
				return finish(s.copyStopped(procErr))
			case <-time.After(20 * time.Millisecond):
			}
			caught = spoolHas(o.SpoolDir, pos)
		}
		if caught {
			a.until = t0
		} else if o.Once {
			return finish(fmt.Errorf("the copy of the binary log did not reach the server's position %s within %v", pos, o.CatchUp))
		}
		if o.Once {
			return finish(nil)
		}
		if err := a.push(ctx, false); err != nil {
			if ctx.Err() != nil {
				return finish(nil)
			}
			stopProc()
			if !procExited {
				<-procDone
			}
			return err
		}
		select {
		case <-ctx.Done():
			return finish(nil)
		case procErr = <-procDone:
			procExited = true
			return finish(s.copyStopped(procErr))
		case <-ticker.C:
		}
	}
}

func (s *Source) copyStopped(err error) error {
	if err == nil {
		return errors.New("mariadb-binlog stopped copying the binary log")
	}
	return fmt.Errorf("copying the binary log stopped: %w", s.conn.redact(err))
}

// push pushes the complete files in the spool and the active file when it
// grew (or force, or a heartbeat is due), then removes the complete ones.
func (a *archiver) push(ctx context.Context, force bool) error {
	names, err := spoolFiles(a.dir)
	if err != nil {
		return err
	}
	now := a.o.Now()
	heartbeat := a.until.After(a.pushedTo) && now.Sub(a.lastPush) >= a.o.Heartbeat
	var p Push
	grew := false
	for i, n := range names {
		f, err := a.spooled(n, i == len(names)-1)
		if err != nil {
			return err
		}
		if f.Partial {
			if f.Size == 0 {
				continue
			}
			grew = f.Size > a.partial[n]
		}
		p.Files = append(p.Files, f)
	}
	complete := len(p.Files) > 0 && !p.Files[0].Partial
	if !complete && !grew && !force && !heartbeat {
		return nil
	}
	p.Until = a.until
	if err := a.o.Push(ctx, p); err != nil {
		return err
	}
	a.lastPush, a.pushedTo = now, a.until
	for _, f := range p.Files {
		if f.Partial {
			a.partial[f.Name] = f.Size
			continue
		}
		delete(a.partial, f.Name)
		if err := os.Remove(f.Path); err != nil {
			return fmt.Errorf("spool directory: %w", err)
		}
	}
	return nil
}

// spooled describes one file of the spool: its whole events and their
// times. The active file may end inside an event; a complete one may not.
func (a *archiver) spooled(name string, active bool) (PushFile, error) {
	f := PushFile{Name: name, Path: filepath.Join(a.dir, name), Partial: active}
	fh, err := os.Open(f.Path)
	if err != nil {
		return f, err
	}
	defer fh.Close()
	sc, err := scanBinlog(fh)
	if err != nil {
		if active {
			if fi, serr := fh.Stat(); serr == nil && fi.Size() < int64(len(binlogMagic)) {
				return f, nil // just created
			}
		}
		return f, fmt.Errorf("spooled binlog %s: %w", name, err)
	}
	if !active && sc.Trailing > 0 {
		return f, fmt.Errorf("spooled binlog %s ends inside an event, although the next file has begun", name)
	}
	f.Size = sc.End
	if sc.First != 0 {
		f.First = time.Unix(int64(sc.First), 0).UTC()
		f.Last = time.Unix(int64(sc.Last), 0).UTC()
	}
	return f, nil
}

// ArchiveSnapshot is one snapshot of a server's binlog archive, as
// ExpireBinlogs sees it.
type ArchiveSnapshot struct {
	ID    string
	Files []BinlogFile
	Until time.Time
}

// ExpireBinlogs returns the IDs of the archive snapshots no restore reads:
// every file they hold is older than oldest (the file where the oldest
// backup still kept starts) or has a better copy (see BestCopies) in
// another snapshot. The snapshot that records the latest Until is kept.
// With no oldest (no backup records a position), nothing expires.
func ExpireBinlogs(snaps []ArchiveSnapshot, oldest string) []string {
	if oldest == "" {
		return nil
	}
	from := binlogNum(oldest)
	var all []BinlogFile
	latest := -1
	for i, s := range snaps {
		for _, f := range s.Files {
			f.Snapshot = s.ID
			all = append(all, f)
		}
		if !s.Until.IsZero() && (latest < 0 || s.Until.After(snaps[latest].Until)) {
			latest = i
		}
	}
	keep := map[string]bool{}
	if latest >= 0 {
		keep[snaps[latest].ID] = true
	}
	for _, f := range BestCopies(all) {
		if binlogNum(f.Name) >= from {
			keep[f.Snapshot] = true
		}
	}
	var out []string
	for _, s := range snaps {
		if !keep[s.ID] {
			out = append(out, s.ID)
		}
	}
	return out
}

// WritePush stores the files of a push as binlog/NAME, each exactly its
// Size bytes.
func WritePush(ctx context.Context, sink source.Sink, p Push) error {
	for _, f := range p.Files {
		rc, err := f.Open()
		if err != nil {
			return err
		}
		n, err := sink.WriteFile(ctx, "binlog/"+f.Name, rc, nil)
		_ = rc.Close()
		if err != nil {
			return fmt.Errorf("store %s: %w", f.Name, err)
		}
		if n != f.Size {
			return fmt.Errorf("store %s: read %d bytes, want %d", f.Name, n, f.Size)
		}
	}
	return nil
}
