package mysql

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bunkerbackup/bunker/internal/safefs"
	"github.com/bunkerbackup/bunker/internal/source"
)

// BinlogFile is one archived binary log file.
type BinlogFile struct {
	Name     string
	Size     int64
	Complete bool // copied after the server had moved on to the next file
	// First and Last are the times of its first and last events (zero
	// when unknown).
	First, Last time.Time
	// Snapshot names where it is stored, for messages (a short ID);
	// SnapshotID is that snapshot's full ID.
	Snapshot   string
	SnapshotID string
	// Open reads the copy.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// BinlogArchive is what is archived of one server's binary log.
type BinlogArchive struct {
	Files []BinlogFile // one copy per name, in log order (see BestCopies)
	// Until is a moment before which every event is in Files (zero when
	// unknown): the archiver had caught up with the server then.
	Until time.Time
}

// BestCopies picks, for every file name, the copy to use — a complete
// one over a partial one, then the largest, then the later in the input
// — and returns them in log order.
func BestCopies(copies []BinlogFile) []BinlogFile {
	best := map[string]BinlogFile{}
	for _, c := range copies {
		b, ok := best[c.Name]
		if !ok || c.Complete && !b.Complete || c.Complete == b.Complete && c.Size >= b.Size {
			best[c.Name] = c
		}
	}
	out := make([]BinlogFile, 0, len(best))
	for _, c := range best {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b BinlogFile) int {
		an, bn := binlogNum(a.Name), binlogNum(b.Name)
		switch {
		case an < bn:
			return -1
		case an > bn:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// describe says what the archive holds, for error messages: "binlog.000001–000004, binlog.000007".
func (a *BinlogArchive) describe() string {
	if len(a.Files) == 0 {
		return "nothing"
	}
	var runs []string
	start := 0
	for i := 1; i <= len(a.Files); i++ {
		if i < len(a.Files) && binlogNum(a.Files[i].Name) == binlogNum(a.Files[i-1].Name)+1 {
			continue
		}
		if i-1 == start {
			runs = append(runs, a.Files[start].Name)
		} else {
			last := a.Files[i-1].Name
			runs = append(runs, a.Files[start].Name+"–"+last[strings.LastIndexByte(last, '.')+1:])
		}
		start = i
	}
	return strings.Join(runs, ", ")
}

// Target is where a point-in-time restore stops: a time (events up to
// and including its second are replayed) or a binlog position (events
// that start before it are replayed).
type Target struct {
	Time     time.Time
	Position BinlogPos
}

func (t Target) String() string {
	if !t.Position.IsZero() {
		return "position " + t.Position.String()
	}
	return "time " + t.Time.Format(time.RFC3339)
}

// stopDatetime is mariadb-binlog's --stop-datetime for t, in UTC (the
// tool runs with TZ=UTC): it stops at the first event whose time is equal
// or later, and event times are whole seconds, so it is the second after
// the one t falls in.
func (t Target) stopDatetime() string {
	return t.Time.UTC().Truncate(time.Second).Add(time.Second).Format("2006-01-02 15:04:05")
}

// replayPlan is what a point-in-time restore replays.
type replayPlan struct {
	files []BinlogFile // contiguous, from the earliest start
}

// planReplay checks that the archive covers every database's replay from
// its position to the target and returns the files needed.
func planReplay(dumps []Dump, t Target, a *BinlogArchive) (*replayPlan, error) {
	if len(dumps) == 0 {
		return &replayPlan{}, nil
	}
	var start BinlogPos
	for _, d := range dumps {
		if d.BinlogFile == "" {
			return nil, fmt.Errorf("database %q was dumped without a binlog position (binary logging was off): it cannot be rolled forward", d.Name)
		}
		if !t.Time.IsZero() && t.Time.Before(d.Started.Truncate(time.Second)) {
			return nil, fmt.Errorf("target time %s is before the backup of %q started (%s): restore an older backup",
				t.Time.Format(time.RFC3339), d.Name, d.Started.Format(time.RFC3339))
		}
		if !t.Position.IsZero() {
			tb, _, _ := ParseBinlogName(t.Position.File)
			db, _, _ := ParseBinlogName(d.BinlogFile)
			if tb != db {
				return nil, fmt.Errorf("target position %s is in another binary log than the backup of %q (%s)", t.Position, d.Name, d.Position())
			}
			if t.Position.Before(d.Position()) {
				return nil, fmt.Errorf("target position %s is before the backup of %q (%s): restore an older backup", t.Position, d.Name, d.Position())
			}
		}
		if start.IsZero() || d.Position().Before(start) {
			start = d.Position()
		}
	}
	i := slices.IndexFunc(a.Files, func(f BinlogFile) bool { return f.Name == start.File })
	if i < 0 {
		return nil, fmt.Errorf("%s, where the backup starts, is not in the binlog archive (it has %s): was the archiver running when the backup was taken?", start.File, a.describe())
	}
	var files []BinlogFile
	for ; ; i++ {
		if i == len(a.Files) {
			break
		}
		f := a.Files[i]
		if len(files) > 0 && binlogNum(f.Name) != binlogNum(files[len(files)-1].Name)+1 {
			want := nextBinlogName(files[len(files)-1].Name)
			return nil, fmt.Errorf("%s is missing from the binlog archive (it has %s): the replay cannot go past %s", want, a.describe(), files[len(files)-1].Name)
		}
		if !t.Time.IsZero() && len(files) > 0 && !f.First.IsZero() && f.First.After(t.Time) {
			// Nothing in f is needed, and f proves the file before it
			// is complete up to the target.
			return &replayPlan{files: files}, nil
		}
		files = append(files, f)
		if !t.Position.IsZero() && f.Name == t.Position.File {
			if int64(t.Position.Pos) > f.Size {
				return nil, fmt.Errorf("the binlog archive has %d bytes of %s (snapshot %s); target position %s is beyond", f.Size, f.Name, f.Snapshot, t.Position)
			}
			return &replayPlan{files: files}, nil
		}
	}
	last := files[len(files)-1]
	if !t.Position.IsZero() {
		return nil, fmt.Errorf("the binlog archive ends with %s (%d bytes); target position %s is later", last.Name, last.Size, t.Position)
	}
	// The target is at or after the last archived event: covered when
	// the archiver had caught up after it, or a later event exists.
	tsec := t.Time.Truncate(time.Second)
	if !a.Until.IsZero() && !a.Until.Before(t.Time) || !last.Last.IsZero() && last.Last.After(tsec) {
		return &replayPlan{files: files}, nil
	}
	ends := a.Until
	if last.Last.After(ends) {
		ends = last.Last
	}
	what := "an unknown time"
	if !ends.IsZero() {
		what = ends.UTC().Format(time.RFC3339)
	}
	return nil, fmt.Errorf("the binlog archive of this server ends at %s (%s, %d bytes); target time %s is later: run bunker mysql binlog-archive (--once) or choose an earlier time",
		what, last.Name, last.Size, t.Time.UTC().Format(time.RFC3339))
}

func nextBinlogName(name string) string {
	base, n, _ := ParseBinlogName(name)
	digits := len(name) - len(base) - 1
	return fmt.Sprintf("%s.%0*d", base, digits, n+1)
}

// RestoreOptions configure a logical restore.
type RestoreOptions struct {
	// Databases to restore; default: all in the backup.
	Databases []string
	// Jobs is how many databases load (and replay) at once (default 2).
	Jobs int
	// NoUsers leaves the accounts alone.
	NoUsers bool
	// Target, when set, rolls every database forward from its dump's
	// binlog position with the archived binlogs in Binlogs.
	Target  *Target
	Binlogs *BinlogArchive
	// Progress receives a line about each step (nil: none).
	Progress func(msg string)
}

// Validate checks the options and fills in defaults.
func (o *RestoreOptions) Validate() error {
	if o.Jobs == 0 {
		o.Jobs = 2
	}
	if o.Jobs < 1 {
		return fmt.Errorf("jobs must be at least 1, not %d", o.Jobs)
	}
	if o.Target != nil {
		if o.Target.Time.IsZero() == o.Target.Position.IsZero() {
			return errors.New("a restore target is a time or a binlog position, not both")
		}
		if o.Binlogs == nil {
			return errors.New("a point-in-time restore needs the binlog archive")
		}
	}
	return nil
}

// RestoreResult says what a restore did.
type RestoreResult struct {
	Databases   []string
	Users       bool
	BinlogFiles []string // replayed
	// UserErrors are the statements of the accounts file that failed
	// (say, a grant on a table of a database that was not restored); the
	// others were applied.
	UserErrors []string
}

// Restore loads a logical backup into the server: every selected
// database's dump, then (with a target) the archived binlogs replayed for
// each database from its own position, then the accounts. With a target,
// the archive is checked to cover the replay before anything is loaded.
func (s *Source) Restore(ctx context.Context, t source.Tree, o RestoreOptions) (*RestoreResult, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	m, err := ReadManifest(ctx, t)
	if err != nil {
		return nil, err
	}
	if m.Physical {
		return nil, errors.New("this is a physical backup: restore it with --physical --datadir DIR")
	}
	dumps := m.Databases
	if len(o.Databases) > 0 {
		dumps = nil
		for _, name := range o.Databases {
			i := slices.IndexFunc(m.Databases, func(d Dump) bool { return d.Name == name })
			if i < 0 {
				var have []string
				for _, d := range m.Databases {
					have = append(have, d.Name)
				}
				return nil, fmt.Errorf("the backup has no database %q (it has %s)", name, strings.Join(have, ", "))
			}
			dumps = append(dumps, m.Databases[i])
		}
	}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(format, args...))
		}
	}
	// Everything the restore needs is checked before it changes anything.
	if _, _, err := findTool(s.opts.ToolDir, toolClient); err != nil {
		return nil, err
	}
	var dir string
	var plan *replayPlan
	if o.Target != nil {
		if _, _, err := findTool(s.opts.ToolDir, toolBinlog); err != nil {
			return nil, err
		}
		dir, err = os.MkdirTemp(s.opts.TempDir, "bunker-binlogs-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		// Plan with the snapshots' metadata, fetch, and plan again with
		// the times and sizes read from the files themselves, until the
		// plan needs nothing more.
		files := slices.Clone(o.Binlogs.Files)
		fetched := map[string]bool{}
		for {
			plan, err = planReplay(dumps, *o.Target, &BinlogArchive{Files: files, Until: o.Binlogs.Until})
			if err != nil {
				return nil, err
			}
			more := false
			for i := range files {
				f := &files[i]
				if fetched[f.Name] || !slices.ContainsFunc(plan.files, func(g BinlogFile) bool { return g.Name == f.Name }) {
					continue
				}
				progress("fetching %s (%d bytes) from snapshot %s", f.Name, f.Size, f.Snapshot)
				if err := fetchBinlog(ctx, filepath.Join(dir, f.Name), f); err != nil {
					return nil, fmt.Errorf("archived binlog %s (snapshot %s): %w", f.Name, f.Snapshot, err)
				}
				fetched[f.Name] = true
				more = true
			}
			if !more {
				break
			}
		}
	}
	res := &RestoreResult{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	for _, d := range dumps {
		g.Go(func() error {
			progress("loading %s", d.Name)
			if err := s.load(gctx, t, d.File, nil); err != nil {
				return fmt.Errorf("restore database %q: %w", d.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, d := range dumps {
		res.Databases = append(res.Databases, d.Name)
	}
	if plan != nil {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(o.Jobs)
		for _, d := range dumps {
			g.Go(func() error {
				progress("replaying binlogs into %s from %s to %s", d.Name, d.Position(), o.Target)
				if err := s.replay(gctx, dir, plan.files, d, *o.Target); err != nil {
					return fmt.Errorf("roll database %q forward: %w", d.Name, err)
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		for _, f := range plan.files {
			res.BinlogFiles = append(res.BinlogFiles, f.Name)
		}
	}
	if !o.NoUsers && m.Users != "" {
		progress("loading the accounts")
		// One account or grant that cannot be applied must not cost the
		// others: --force goes on, and the errors are reported.
		var errs []string
		lw := &lineWriter{fn: func(line []byte, _ bool) {
			if bytes.HasPrefix(line, []byte("ERROR ")) {
				errs = append(errs, string(line))
			}
		}}
		if err := s.load(ctx, t, m.Users, lw, "--force"); err != nil {
			return nil, fmt.Errorf("restore the accounts: %w", err)
		}
		lw.Flush()
		res.Users, res.UserErrors = true, errs
	}
	return res, nil
}

// load feeds one SQL file of the backup to the mariadb client, with
// extra options; stderr, when not nil, also gets the client's messages.
func (s *Source) load(ctx context.Context, t source.Tree, file string, stderr io.Writer, opts ...string) error {
	rc, err := t.Open(ctx, file)
	if err != nil {
		return err
	}
	defer rc.Close()
	cmd, done, err := s.tool(toolClient, append([]string{"--batch"}, opts...)...)
	if err != nil {
		return err
	}
	defer done()
	cmd.Stdin, cmd.Stderr = rc, stderr
	return s.conn.redact(cmd.Run(ctx))
}

// fetchBinlog copies an archived file to p, checks that it is a binary
// log of the recorded size and reads the times of its events.
func fetchBinlog(ctx context.Context, p string, f *BinlogFile) error {
	rc, err := f.Open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	n, err := io.Copy(out, rc)
	if err != nil {
		return err
	}
	if n != f.Size {
		return fmt.Errorf("has %d bytes, the snapshot says %d", n, f.Size)
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		return err
	}
	sc, err := scanBinlog(out)
	if err != nil {
		return err
	}
	if sc.Trailing > 0 {
		// A copy ends with a complete event; cut what is not.
		if err := out.Truncate(sc.End); err != nil {
			return err
		}
		f.Size = sc.End
	}
	if sc.First != 0 {
		f.First = time.Unix(int64(sc.First), 0).UTC()
		f.Last = time.Unix(int64(sc.Last), 0).UTC()
	}
	return out.Close()
}

// replayArgs are mariadb-binlog's arguments to replay the events of one
// database from its dump's position to the target.
func replayArgs(dir string, files []BinlogFile, d Dump, t Target) []string {
	args := []string{"--no-defaults", "--database=" + d.Name, "--start-position=" + strconv.FormatUint(d.BinlogPos, 10)}
	if !t.Position.IsZero() {
		args = append(args, "--stop-position="+strconv.FormatUint(t.Position.Pos, 10))
	} else {
		args = append(args, "--stop-datetime="+t.stopDatetime())
	}
	started := false
	for _, f := range files {
		if f.Name == d.BinlogFile {
			started = true
		}
		if started {
			args = append(args, filepath.Join(dir, f.Name))
		}
	}
	return args
}

// replay pipes mariadb-binlog's output for one database into the client.
func (s *Source) replay(ctx context.Context, dir string, files []BinlogFile, d Dump, t Target) error {
	path, _, err := findTool(s.opts.ToolDir, toolBinlog)
	if err != nil {
		return err
	}
	// --stop-datetime is read in the tool's local time zone: make it UTC.
	binlog := &source.Command{Path: path, Args: replayArgs(dir, files, d, t), Env: []string{"TZ=UTC"}}
	client, done, err := s.tool(toolClient, "--batch", "--binary-mode")
	if err != nil {
		return err
	}
	defer done()
	err = binlog.Output(ctx, func(r io.Reader) error {
		client.Stdin = r
		return client.Run(ctx)
	})
	return s.conn.redact(err)
}

// PhysicalRestoreOptions configure the restore of a physical backup.
type PhysicalRestoreOptions struct {
	// DataDir is the data directory to create; it must be empty or not
	// exist.
	DataDir string
	// Owner gets the files (a user name; "" leaves them to this process's
	// user).
	Owner string
	// ToolDir is where mbstream and mariadb-backup are ("" means PATH).
	ToolDir string
	// Progress receives a line about each step (nil: none).
	Progress func(msg string)
}

// RestorePhysical extracts a physical backup into an empty data directory
// and prepares it (mariadb-backup --prepare), so that a server starts on
// it. It returns the backup's manifest (its binlog position is where a
// roll-forward would start).
func RestorePhysical(ctx context.Context, t source.Tree, o PhysicalRestoreOptions) (*Manifest, error) {
	if o.DataDir == "" {
		return nil, errors.New("give the data directory to restore into (--datadir)")
	}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(format, args...))
		}
	}
	m, err := ReadManifest(ctx, t)
	if err != nil {
		return nil, err
	}
	if !m.Physical {
		return nil, errors.New("this backup holds dumps, not a physical copy: restore it without --physical")
	}
	stream, _, err := findTool(o.ToolDir, toolStream)
	if err != nil {
		return nil, err
	}
	backup, _, err := findTool(o.ToolDir, toolBackup)
	if err != nil {
		return nil, err
	}
	var uid, gid int = -1, -1
	if o.Owner != "" {
		if uid, gid, err = source.LookupUser(o.Owner); err != nil {
			return nil, fmt.Errorf("owner: %w", err)
		}
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dir, 0o750); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case len(entries) > 0:
		return nil, fmt.Errorf("%s is not empty: restore into an empty or new directory", dir)
	}
	rc, err := t.Open(ctx, m.File)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	progress("extracting %s into %s", m.File, dir)
	// mbstream writes wherever an entry's name points (recent versions
	// refuse some names, but then stop and exit 0), so every name is
	// checked on the way in, before mbstream sees its chunk.
	guard := newXbstreamGuard(rc)
	x := &source.Command{Path: stream, Args: []string{"-x", "-C", dir}, Stdin: guard}
	err = x.Run(ctx)
	if gerr := guard.Err(); gerr != nil {
		return nil, fmt.Errorf("extract %s into %s: %w", m.File, dir, gerr)
	}
	if err != nil {
		return nil, fmt.Errorf("extract the backup: %w", err)
	}
	if err := checkPrepareOptions(dir); err != nil {
		return nil, err
	}
	progress("preparing %s", dir)
	prep := &source.Command{Path: backup, Args: []string{"--prepare", "--target-dir=" + dir}}
	if err := prep.Run(ctx); err != nil {
		return nil, fmt.Errorf("prepare the data directory: %w", err)
	}
	if uid >= 0 {
		err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			return nil, fmt.Errorf("give %s to %s: %w", dir, o.Owner, err)
		}
	}
	return m, nil
}

// checkPrepareOptions reads the backup's backup-my.cnf in dir (a regular
// file, reached without following a link) and refuses the options that
// would make mariadb-backup --prepare write outside dir. A missing file
// is left to the prepare to report.
func checkPrepareOptions(dir string) error {
	root, err := safefs.Open(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	f, err := root.OpenFile(backupCnf, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", root.Join(backupCnf), err)
	}
	if len(b) > 1<<20 {
		return fmt.Errorf("%s is larger than 1 MiB: not a mariadb-backup options file", root.Join(backupCnf))
	}
	if err := checkBackupCnf(b); err != nil {
		return fmt.Errorf("in %s: %w", dir, err)
	}
	return nil
}

// NewTarget is the target of a point-in-time restore from a time (zero:
// none) or a position FILE:POS ("": none); nil when there is neither.
func NewTarget(t time.Time, pos string) (*Target, error) {
	switch {
	case !t.IsZero() && pos != "":
		return nil, errors.New("give --target-time or --target-position, not both")
	case !t.IsZero():
		return &Target{Time: t}, nil
	case pos != "":
		p, err := ParsePosition(pos)
		if err != nil {
			return nil, err
		}
		return &Target{Position: p}, nil
	}
	return nil, nil
}

// RollForwardSteps says how to roll a prepared physical backup forward by
// hand with the archived binlogs (nothing when it records no position).
func (m *Manifest) RollForwardSteps() []string {
	if m.BinlogFile == "" {
		return nil
	}
	return []string{
		fmt.Sprintf("  3. to roll forward from %s:%d (GTID %s), list the archived binlogs,", m.BinlogFile, m.BinlogPos, m.GTID),
		fmt.Sprintf("       bunker mysql binlogs --path %s", ArchivePath(m.Server)),
		fmt.Sprintf("     fetch %s and the files after it (SNAPSHOT is the one listed for each),", m.BinlogFile),
		"       bunker dump SNAPSHOT /binlog/NAME > NAME",
		"     and replay them into the running server:",
		fmt.Sprintf("       mariadb-binlog --start-position=%d [--stop-datetime='YYYY-MM-DD HH:MM:SS'] %s NEXT... | mariadb", m.BinlogPos, m.BinlogFile),
	}
}
