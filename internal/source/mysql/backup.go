package mysql

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bunkerbackup/bunker/internal/source"
	"golang.org/x/sync/errgroup"
)

// Files of a backup in the snapshot tree.
const (
	ManifestFile = "mysql/backup.json"
	UsersFile    = "mysql/_users.sql"
	PhysicalFile = "mysql/backup.xbstream"
)

// manifestVersion is the version of backup.json this code writes; it
// refuses newer ones.
const manifestVersion = 1

// systemDatabases are not backed up unless asked for by name: the server
// builds them itself (the accounts of mysql go into _users.sql).
var systemDatabases = []string{"information_schema", "performance_schema", "sys", "mysql"}

// Manifest is mysql/backup.json: what a backup holds and the binlog
// positions a point-in-time restore replays from.
type Manifest struct {
	Version       int       `json:"version"`
	Flavour       Flavour   `json:"flavour"`
	ServerVersion string    `json:"server_version"`
	Server        string    `json:"server"`
	Physical      bool      `json:"physical"`
	Started       time.Time `json:"started"`
	Finished      time.Time `json:"finished"`
	// Databases are the logical dumps, in name order.
	Databases []Dump `json:"databases,omitempty"`
	// Users is the file with the accounts and their grants ("" when the
	// backup has none).
	Users string `json:"users,omitempty"`
	// File is the xbstream of a physical backup.
	File string `json:"file,omitempty"`
	// BinlogFile and BinlogPos: for a physical backup where it stops; for
	// a logical one the earliest position of its dumps (where a replay of
	// all of them starts). GTID goes with it when the server told.
	BinlogFile string `json:"binlog_file,omitempty"`
	BinlogPos  uint64 `json:"binlog_pos,omitempty"`
	GTID       string `json:"gtid,omitempty"`
}

// Dump is the logical dump of one database.
type Dump struct {
	Name       string    `json:"name"`
	File       string    `json:"file"`
	Size       int64     `json:"size"`
	BinlogFile string    `json:"binlog_file,omitempty"` // the dump is consistent with this position
	BinlogPos  uint64    `json:"binlog_pos,omitempty"`
	GTID       string    `json:"gtid,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`
}

// Position is where the dump is consistent with the binary log.
func (d Dump) Position() BinlogPos { return BinlogPos{File: d.BinlogFile, Pos: d.BinlogPos} }

// Meta is the snapshot metadata of the backup.
func (m *Manifest) Meta() BackupMeta {
	md := BackupMeta{Flavour: m.Flavour, ServerVersion: m.ServerVersion, Physical: m.Physical,
		Position: BinlogPos{File: m.BinlogFile, Pos: m.BinlogPos}, GTID: m.GTID}
	for _, d := range m.Databases {
		md.Databases = append(md.Databases, d.Name)
	}
	return md
}

// ParseManifest decodes and checks backup.json.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestFile, err)
	}
	if m.Version > manifestVersion {
		return nil, fmt.Errorf("%s has version %d: written by a newer bunker", ManifestFile, m.Version)
	}
	if m.Version < 1 {
		return nil, fmt.Errorf("%s: no version", ManifestFile)
	}
	checkFile := func(p string) error {
		if !strings.HasPrefix(p, "mysql/") || path.Clean(p) != p || strings.Count(p, "/") != 1 {
			return fmt.Errorf("%s: bad file name %q", ManifestFile, p)
		}
		return nil
	}
	checkPos := func(file string) error {
		if file == "" {
			return nil
		}
		_, _, err := ParseBinlogName(file)
		return err
	}
	if m.Physical {
		if err := checkFile(m.File); err != nil {
			return nil, err
		}
	}
	if m.Users != "" {
		if err := checkFile(m.Users); err != nil {
			return nil, err
		}
	}
	if err := checkPos(m.BinlogFile); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, d := range m.Databases {
		if d.Name == "" || seen[d.Name] {
			return nil, fmt.Errorf("%s: database name %q is empty or repeated", ManifestFile, d.Name)
		}
		seen[d.Name] = true
		if err := checkFile(d.File); err != nil {
			return nil, err
		}
		if err := checkPos(d.BinlogFile); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// ReadManifest reads backup.json from a backup.
func ReadManifest(ctx context.Context, t source.Tree) (*Manifest, error) {
	b, err := source.ReadFile(ctx, t, ManifestFile)
	if err != nil {
		return nil, fmt.Errorf("read %s (is this a MySQL backup?): %w", ManifestFile, err)
	}
	return ParseManifest(b)
}

// DumpFileName is the file of a database's dump: mysql/<name>.sql, with
// the characters a path cannot hold (and a leading '_' or '.', which
// would collide with _users.sql or hide the file) percent-encoded.
func DumpFileName(db string) string {
	var b strings.Builder
	for i := 0; i < len(db); {
		r, size := utf8.DecodeRuneInString(db[i:])
		escape := r == '%' || r == '/' || r == '\\' || r < 0x20 || r == 0x7f || r == utf8.RuneError ||
			i == 0 && (r == '_' || r == '.')
		if escape {
			for _, c := range []byte(db[i : i+size]) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		} else {
			b.WriteString(db[i : i+size])
		}
		i += size
	}
	return "mysql/" + b.String() + ".sql"
}

// BackupOptions configure a backup.
type BackupOptions struct {
	// Databases to dump; default: every database but information_schema,
	// performance_schema, sys and mysql.
	Databases []string
	// Jobs is how many dumps run at once (default 2); for a physical
	// backup, mariadb-backup's --parallel.
	Jobs int
	// NoUsers leaves out the accounts and grants.
	NoUsers bool
	// Physical takes a mariadb-backup copy of the data directory instead
	// of dumps. It must run on the database host.
	Physical bool
	// DataDir is passed to mariadb-backup as --datadir (it asks the
	// server by default).
	DataDir string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Validate checks the options and fills in defaults.
func (o *BackupOptions) Validate() error {
	if o.Jobs == 0 {
		o.Jobs = 2
	}
	if o.Jobs < 1 {
		return fmt.Errorf("jobs must be at least 1, not %d", o.Jobs)
	}
	if o.Physical && len(o.Databases) > 0 {
		return errors.New("a physical backup copies every database: leave out --database")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Backup writes a backup of the server into sink and returns its
// manifest (also written as mysql/backup.json). Any failure of a tool or
// of the sink fails the whole backup.
func (s *Source) Backup(ctx context.Context, sink source.Sink, o BackupOptions) (*Manifest, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	m := &Manifest{Version: manifestVersion, Flavour: s.Info.Flavour, ServerVersion: s.Info.Version,
		Server: s.Server(), Physical: o.Physical, Started: o.Now().UTC()}
	var err error
	if o.Physical {
		err = s.backupPhysical(ctx, sink, o, m)
	} else {
		err = s.backupLogical(ctx, sink, o, m)
	}
	if err != nil {
		return nil, err
	}
	m.Finished = o.Now().UTC()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := source.WriteBytes(ctx, sink, ManifestFile, append(b, '\n'), nil); err != nil {
		return nil, err
	}
	return m, nil
}

// Databases lists the server's databases, system ones included.
func (s *Source) Databases(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SHOW DATABASES")
	if err != nil {
		return nil, fmt.Errorf("%s: list databases: %w", s.Server(), s.conn.redact(err))
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

func (s *Source) backupLogical(ctx context.Context, sink source.Sink, o BackupOptions, m *Manifest) error {
	// Look the tool up before anything runs: a missing tool is the
	// clearest error there is.
	if _, _, err := findTool(s.opts.ToolDir, toolDump); err != nil {
		return err
	}
	all, err := s.Databases(ctx)
	if err != nil {
		return err
	}
	dbs := o.Databases
	if len(dbs) == 0 {
		for _, d := range all {
			if !slices.Contains(systemDatabases, d) {
				dbs = append(dbs, d)
			}
		}
		if len(dbs) == 0 {
			s.warnf("%s has no databases besides the system ones: the backup holds only the accounts", s.Server())
		}
	} else {
		for _, d := range dbs {
			if !slices.Contains(all, d) {
				return fmt.Errorf("database %q does not exist on %s", d, s.Server())
			}
		}
	}
	slices.Sort(dbs)
	dbs = slices.Compact(dbs)
	files := map[string]string{}
	for _, d := range dbs {
		f := DumpFileName(d)
		if other, ok := files[f]; ok {
			return fmt.Errorf("databases %q and %q would both be stored as %s", other, d, f)
		}
		files[f] = d
	}
	if !s.Info.LogBin {
		s.warnf("binary logging is off on %s: the backup records no binlog position, so point-in-time recovery from it is impossible", s.Server())
	}
	m.Databases = make([]Dump, len(dbs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Jobs)
	for i, d := range dbs {
		g.Go(func() error {
			dump, err := s.dumpDatabase(gctx, sink, d, o.Now)
			if err != nil {
				return err
			}
			m.Databases[i] = dump
			return nil
		})
	}
	if !o.NoUsers {
		g.Go(func() error {
			ok, err := s.dumpUsers(gctx, sink)
			if ok {
				m.Users = UsersFile
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, d := range m.Databases {
		if d.BinlogFile == "" {
			continue
		}
		if m.BinlogFile == "" || d.Position().Before(BinlogPos{File: m.BinlogFile, Pos: m.BinlogPos}) {
			m.BinlogFile, m.BinlogPos, m.GTID = d.BinlogFile, d.BinlogPos, d.GTID
		}
	}
	return nil
}

// dumpArgs are the options of one database's dump.
func (s *Source) dumpArgs(mariadbTool bool, db string) []string {
	args := []string{"--single-transaction", "--routines", "--events", "--triggers", "--hex-blob",
		"--default-character-set=utf8mb4"}
	if s.Info.LogBin {
		if s.Info.Flavour == MySQL && versionAtLeast(s.Info.Version, 8, 0, 26) {
			args = append(args, "--source-data=2")
		} else {
			args = append(args, "--master-data=2")
		}
		if mariadbTool && s.Info.Flavour == MariaDB {
			args = append(args, "--gtid")
		}
	}
	if !mariadbTool {
		// MySQL's mysqldump writes SET @@GLOBAL.GTID_PURGED by default,
		// which fails on a server with history.
		args = append(args, "--set-gtid-purged=OFF")
	}
	return append(args, "--databases", "--", db)
}

func (s *Source) dumpDatabase(ctx context.Context, sink source.Sink, db string, now func() time.Time) (Dump, error) {
	d := Dump{Name: db, File: DumpFileName(db), Started: now().UTC()}
	_, mariadbTool, err := findTool(s.opts.ToolDir, toolDump)
	if err != nil {
		return d, err
	}
	cmd, done, err := s.tool(toolDump, s.dumpArgs(mariadbTool, db)...)
	if err != nil {
		return d, err
	}
	defer done()
	sc := newDumpScanner()
	err = cmd.Output(ctx, func(r io.Reader) error {
		n, err := sink.WriteFile(ctx, d.File, io.TeeReader(r, sc), nil)
		d.Size = n
		return err
	})
	if err != nil {
		return d, fmt.Errorf("dump database %q: %w", db, s.conn.redact(err))
	}
	sc.Finish()
	if !sc.Completed {
		return d, fmt.Errorf("dump database %q: %s exited without error, but its output ends without the \"-- Dump completed\" line", db, cmd.Name())
	}
	if s.Info.LogBin {
		if sc.Pos.IsZero() {
			return d, fmt.Errorf("dump database %q: no binlog position (CHANGE MASTER line) in the output of %s", db, cmd.Name())
		}
		d.BinlogFile, d.BinlogPos, d.GTID = sc.Pos.File, sc.Pos.Pos, sc.GTID
	}
	d.Finished = now().UTC()
	return d, nil
}

// dumpUsers writes the accounts and their grants (MariaDB's
// mariadb-dump --system=users; as CREATE USER IF NOT EXISTS, so that a
// restore keeps the accounts the target already has). It reports false
// when the tool cannot (MySQL's mysqldump).
func (s *Source) dumpUsers(ctx context.Context, sink source.Sink) (bool, error) {
	_, mariadbTool, err := findTool(s.opts.ToolDir, toolDump)
	if err != nil {
		return false, err
	}
	if !mariadbTool || s.Info.Flavour != MariaDB {
		s.warnf("%s cannot dump accounts (only MariaDB's mariadb-dump has --system=users): the backup has no users; back them up with e.g. pt-show-grants", toolDump[1])
		return false, nil
	}
	cmd, done, err := s.tool(toolDump, "--system=users", "--insert-ignore")
	if err != nil {
		return false, err
	}
	defer done()
	sc := newDumpScanner()
	err = cmd.Output(ctx, func(r io.Reader) error {
		_, err := sink.WriteFile(ctx, UsersFile, io.TeeReader(r, sc), nil)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("dump users: %w", s.conn.redact(err))
	}
	sc.Finish()
	if !sc.Completed {
		return false, fmt.Errorf("dump users: %s exited without error, but its output ends without the \"-- Dump completed\" line", cmd.Name())
	}
	return true, nil
}

func (s *Source) backupPhysical(ctx context.Context, sink source.Sink, o BackupOptions, m *Manifest) error {
	tmp, err := os.MkdirTemp(s.opts.TempDir, "bunker-mariadb-backup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	args := []string{"--backup", "--stream=xbstream", "--target-dir=" + tmp, "--parallel=" + strconv.Itoa(o.Jobs)}
	if o.DataDir != "" {
		args = append(args, "--datadir="+o.DataDir)
	}
	cmd, done, err := s.tool(toolBackup, args...)
	if err != nil {
		return err
	}
	defer done()
	sc := newBackupLogScanner()
	cmd.Stderr = sc
	m.File = PhysicalFile
	err = cmd.Output(ctx, func(r io.Reader) error {
		_, err := sink.WriteFile(ctx, PhysicalFile, r, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("physical backup: %w", s.conn.redact(err))
	}
	sc.lw.Flush()
	if !sc.Completed {
		return fmt.Errorf("physical backup: %s exited without error but did not report \"completed OK!\"", cmd.Name())
	}
	if sc.Pos.IsZero() {
		if s.Info.LogBin {
			return fmt.Errorf("physical backup: %s did not report the binlog position", cmd.Name())
		}
		s.warnf("binary logging is off on %s: the backup records no binlog position", s.Server())
	}
	m.BinlogFile, m.BinlogPos, m.GTID = sc.Pos.File, sc.Pos.Pos, sc.GTID
	return nil
}
