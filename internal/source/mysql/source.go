package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bunkerbackup/bunker/internal/source"
)

// Flavour is the kind of server (or tool): MariaDB or MySQL.
type Flavour string

// The flavours.
const (
	MariaDB Flavour = "mariadb"
	MySQL   Flavour = "mysql"
)

// The tools, by the names they are looked for under, in order: MariaDB's
// first, then MySQL's (or Percona's).
var (
	toolDump   = []string{"mariadb-dump", "mysqldump"}
	toolClient = []string{"mariadb", "mysql"}
	toolBinlog = []string{"mariadb-binlog", "mysqlbinlog"}
	toolBackup = []string{"mariadb-backup", "mariabackup", "xtrabackup"}
	toolStream = []string{"mbstream", "xbstream"}
)

// toolPackages says what to install for a missing tool (Debian names).
var toolPackages = map[string]string{
	"mariadb-dump":   "mariadb-client",
	"mariadb":        "mariadb-client",
	"mariadb-binlog": "mariadb-client",
	"mariadb-backup": "mariadb-backup",
	"mbstream":       "mariadb-backup",
}

// findTool looks a tool up under its names in order: in dir when given,
// else on PATH. mariadb reports whether it is MariaDB's build (which
// spells some options differently).
func findTool(dir string, names []string) (path string, mariadb bool, err error) {
	for _, n := range names {
		if p, err := source.LookTool(n, dir); err == nil {
			return p, isMariaDBTool(p), nil
		}
	}
	where := "on PATH"
	if dir != "" {
		where = "in " + dir
	}
	return "", false, fmt.Errorf("%s not found %s: install it (Debian package %s) or give its directory with --tool-dir",
		strings.Join(names, " or "), where, toolPackages[names[0]])
}

func isMariaDBTool(p string) bool {
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	b := filepath.Base(p)
	return strings.HasPrefix(b, "mariadb") || b == "mariabackup" || b == "mbstream"
}

// Options configure a Source.
type Options struct {
	Conn Conn
	// ToolDir is where mariadb-dump and the other tools are; "" means
	// PATH.
	ToolDir string
	// TempDir holds the option files and temporary copies of binlogs;
	// "" means the system's temporary directory.
	TempDir string
	// Warn receives warnings (nil drops them).
	Warn func(msg string)
}

// ServerInfo are the facts about a server a backup records.
type ServerInfo struct {
	Flavour  Flavour
	Version  string // as SELECT VERSION() returns it
	LogBin   bool   // binary logging is on
	ServerID uint32
}

// Source is a connection to one MySQL or MariaDB server.
type Source struct {
	conn Conn
	opts Options
	db   *sql.DB
	Info ServerInfo
}

// Connect connects to the server and reads what it is.
func Connect(ctx context.Context, o Options) (*Source, error) {
	c := o.Conn.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	db, err := c.openDB(ctx)
	if err != nil {
		return nil, err
	}
	s := &Source{conn: c, opts: o, db: db}
	var version, logBin, serverID sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT VERSION(), @@log_bin, @@server_id").Scan(&version, &logBin, &serverID); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%s: read server version: %w", c.Server(), c.redact(err))
	}
	s.Info.Version = version.String
	s.Info.Flavour = MySQL
	if strings.Contains(strings.ToLower(version.String), "mariadb") {
		s.Info.Flavour = MariaDB
	}
	s.Info.LogBin = logBin.String == "1" || strings.EqualFold(logBin.String, "ON")
	if n, err := strconv.ParseUint(serverID.String, 10, 32); err == nil {
		s.Info.ServerID = uint32(n)
	}
	return s, nil
}

// Close closes the connection.
func (s *Source) Close() error { return s.db.Close() }

// Server names the server: socket path or host:port.
func (s *Source) Server() string { return s.conn.Server() }

func (s *Source) warnf(format string, args ...any) {
	if s.opts.Warn != nil {
		s.opts.Warn(fmt.Sprintf(format, args...))
	}
}

// tool prepares a run of one of the tools with the connection settings in
// a fresh option file, which is its first option; done removes the file
// (call it after the run).
func (s *Source) tool(names []string, args ...string) (cmd *source.Command, done func(), err error) {
	path, mariadb, err := findTool(s.opts.ToolDir, names)
	if err != nil {
		return nil, nil, err
	}
	f, err := s.conn.writeOptionsFile(s.opts.TempDir, mariadb)
	if err != nil {
		return nil, nil, err
	}
	cmd = &source.Command{Path: path, Args: append([]string{"--defaults-extra-file=" + f}, args...)}
	return cmd, func() { _ = os.Remove(f) }, nil
}

// versionAtLeast compares a "8.0.26-log" version with major.minor.patch.
func versionAtLeast(v string, major, minor, patch int) bool {
	var parts [3]int
	for i, f := range strings.SplitN(v, ".", 3) {
		n := 0
		for _, c := range f {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		parts[i] = n
	}
	want := [3]int{major, minor, patch}
	for i := range parts {
		if parts[i] != want[i] {
			return parts[i] > want[i]
		}
	}
	return true
}
