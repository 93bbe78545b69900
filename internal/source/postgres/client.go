package postgres

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/jackc/pgx/v5"
)

// Config says how to reach a server and where its programs are.
type Config struct {
	// Conn is the connection (ParseConnInfo); its password, if any, is
	// handed to the programs through a temporary password file.
	Conn ConnInfo
	// BinDir holds pg_dump, pg_restore, pg_basebackup, psql…; empty
	// means the newest /usr/lib/postgresql/*/bin, then PATH.
	BinDir string
	// TempDir is where the password file goes (default os.TempDir()).
	TempDir string
	// Stderr, when set, receives the programs' standard error as it
	// comes (for -v); their last lines are always in errors.
	Stderr io.Writer
	// Getenv reads PGHOST and PGPORT for naming the server (default
	// os.Getenv).
	Getenv func(string) string
}

// Client runs PostgreSQL's programs and queries for one server.
type Client struct {
	cfg      Config
	passfile string
	env      []string
}

// Open prepares a client: with a password it writes a 0600 password file
// that only the programs it starts see (PGPASSFILE). Close removes it.
func Open(cfg Config) (*Client, error) {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	c := &Client{cfg: cfg}
	if pw, ok := cfg.Conn["password"]; ok {
		f, err := os.CreateTemp(cfg.TempDir, "bunker-pgpass-")
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(pw)
		_, werr := fmt.Fprintf(f, "*:*:*:*:%s\n", esc)
		cerr := f.Close()
		if werr != nil || cerr != nil {
			os.Remove(f.Name())
			return nil, fmt.Errorf("password file: %v", firstErr(werr, cerr))
		}
		c.passfile = f.Name()
		c.env = append(c.env, "PGPASSFILE="+c.passfile)
	}
	// The programs must not prompt: no terminal is theirs.
	c.env = append(c.env, "PGCONNECT_TIMEOUT="+orDefault(cfg.Conn["connect_timeout"], "30"))
	return c, nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Close removes the password file.
func (c *Client) Close() error {
	if c.passfile != "" {
		return os.Remove(c.passfile)
	}
	return nil
}

// Server names the server: host:port, never credentials.
func (c *Client) Server() string { return c.cfg.Conn.Server(c.cfg.Getenv) }

// BinDir finds the directory of PostgreSQL's programs: the newest
// /usr/lib/postgresql/*/bin that has name, else name's directory on PATH.
func BinDir(name string) string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	major := func(d string) int { n, _ := strconv.Atoi(filepath.Base(filepath.Dir(d))); return n }
	sort.Slice(dirs, func(i, j int) bool { return major(dirs[i]) > major(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return d
		}
	}
	return ""
}

// Tool returns a command for one of PostgreSQL's programs with the
// password file in its environment. The connection string, without the
// password, goes on the command line by the caller (--dbname).
func (c *Client) Tool(name string, args ...string) (*source.Command, error) {
	dir := c.cfg.BinDir
	var search []string
	if dir == "" {
		if d := BinDir(name); d != "" {
			search = append(search, d)
		}
	}
	p, err := source.LookTool(name, dir, search...)
	if err != nil {
		return nil, fmt.Errorf("%w (PostgreSQL client programs; give --pg-bin DIR)", err)
	}
	return &source.Command{Path: p, Args: args, Env: c.env, Stderr: c.cfg.Stderr}, nil
}

// DSN is the public connection string for database db ("" keeps the
// configured one).
func (c *Client) DSN(db string) string {
	ci := c.cfg.Conn
	if db != "" {
		ci = ci.With("dbname", db)
	}
	return ci.Public()
}

// Connect opens a SQL connection to database db ("" keeps the
// configured one).
func (c *Client) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	ci := c.cfg.Conn
	if db != "" {
		ci = ci.With("dbname", db)
	}
	cfg, err := pgx.ParseConfig(ci.String())
	if err != nil {
		return nil, fmt.Errorf("connection settings: %s", redact(err.Error(), ci["password"]))
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %s", c.Server(), redact(err.Error(), ci["password"]))
	}
	return conn, nil
}

// redact removes a secret from a message.
func redact(msg, secret string) string {
	if secret == "" {
		return msg
	}
	return strings.ReplaceAll(msg, secret, "***")
}

// ServerInfo are the facts a snapshot records about the server.
type ServerInfo struct {
	Version          string // server_version, e.g. "15.14 (Debian 15.14-0+deb12u1)"
	VersionNum       int    // server_version_num
	SystemIdentifier string // "" when the user may not read pg_control
	Timeline         int
	Databases        []string // that allow connections, templates excluded
}

// Info queries the server.
func (c *Client) Info(ctx context.Context) (*ServerInfo, error) {
	conn, err := c.Connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	info := &ServerInfo{}
	var num string
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('server_version_num')").Scan(&info.Version, &num); err != nil {
		return nil, fmt.Errorf("query server version: %w", err)
	}
	info.VersionNum, _ = strconv.Atoi(num)
	// Needs superuser or pg_read_all_stats on some versions: optional.
	var sysid int64
	var tli int32
	if err := conn.QueryRow(ctx, "SELECT system_identifier, (SELECT timeline_id FROM pg_control_checkpoint()) FROM pg_control_system()").Scan(&sysid, &tli); err == nil {
		info.SystemIdentifier = strconv.FormatUint(uint64(sysid), 10)
		info.Timeline = int(tli)
	}
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname")
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	info.Databases, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	return info, nil
}
