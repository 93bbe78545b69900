package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/jackc/pgx/v5"
)

// Config says how to reach a server and where its programs are.
type Config struct {
	// Conn is the connection (ParseConnInfo). Its secrets never go on a
	// program's command line, where any local user reads them in
	// /proc/PID/cmdline: the password goes through a temporary password
	// file (PGPASSFILE), the other SecretKeys (sslpassword, which has no
	// environment variable) through a temporary service file
	// (PGSERVICEFILE) that the command line names with service=.
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
	// servicefile holds the secrets other than the password under
	// [service]; empty when there are none.
	servicefile, service string
	env                  []string
}

// Open prepares a client. With a password it writes a 0600 password file
// that only the programs it starts see (PGPASSFILE); with another secret
// (sslpassword) a 0600 service file (PGSERVICEFILE) with it under a
// random service name. Close removes them.
func Open(cfg Config) (*Client, error) {
	if cfg.Getenv == nil {
		cfg.Getenv = os.Getenv
	}
	c := &Client{cfg: cfg}
	if pw, ok := cfg.Conn["password"]; ok {
		esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(pw)
		name, err := writeSecretFile(cfg.TempDir, "bunker-pgpass-", "*:*:*:*:"+esc+"\n")
		if err != nil {
			return nil, fmt.Errorf("password file: %w", err)
		}
		c.passfile = name
		c.env = append(c.env, "PGPASSFILE="+c.passfile)
	}
	var lines []string
	for _, k := range SecretKeys[1:] {
		v, ok := cfg.Conn[k]
		if !ok {
			continue
		}
		// libpq reads a service file line by line and drops trailing
		// white space: such a value cannot travel there.
		if strings.ContainsAny(v, "\r\n") || strings.TrimRightFunc(v, unicode.IsSpace) != v {
			c.Close()
			return nil, fmt.Errorf("connection string: %s holds a line break or ends with white space, which libpq cannot read from a service file", k)
		}
		lines = append(lines, k+"="+v)
	}
	if len(lines) > 0 {
		if svc := cfg.Conn["service"]; svc != "" {
			c.Close()
			keys := strings.Join(keysOf(lines), ", ")
			return nil, fmt.Errorf("connection string: service=%s cannot be combined with %s, which bunker hands to the PostgreSQL programs in a service file of its own (libpq reads one service): put %s in the entry of service %s instead",
				svc, keys, keys, svc)
		}
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		c.service = "bunker-" + hex.EncodeToString(rnd[:])
		name, err := writeSecretFile(cfg.TempDir, "bunker-pgservice-", "["+c.service+"]\n"+strings.Join(lines, "\n")+"\n")
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("service file: %w", err)
		}
		c.servicefile = name
		c.env = append(c.env, "PGSERVICEFILE="+c.servicefile)
	}
	// The programs must not prompt: no terminal is theirs.
	c.env = append(c.env, "PGCONNECT_TIMEOUT="+orDefault(cfg.Conn["connect_timeout"], "30"))
	return c, nil
}

// writeSecretFile writes content to a new 0600 file in dir.
func writeSecretFile(dir, pattern, content string) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	_, werr := f.WriteString(content)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %v", f.Name(), firstErr(werr, cerr))
	}
	return f.Name(), nil
}

// keysOf returns the keywords of key=value lines.
func keysOf(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i], _, _ = strings.Cut(l, "=")
	}
	return out
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

// Close removes the password and service files.
func (c *Client) Close() error {
	var errs []error
	for _, f := range []string{c.passfile, c.servicefile} {
		if f != "" {
			errs = append(errs, os.Remove(f))
		}
	}
	c.passfile, c.servicefile = "", ""
	return errors.Join(errs...)
}

// Server names the server: host:port, never credentials.
func (c *Client) Server() string { return c.cfg.Conn.Server(c.cfg.Getenv) }

// SearchDirs is where PostgreSQL's programs are looked for when no
// directory is given, before PATH: Debian's and Ubuntu's per-version
// directories (pg_basebackup, pg_receivewal, pg_verifybackup and initdb
// are only there), the newest first.
var SearchDirs = []string{"/usr/lib/postgresql/*/bin"}

// LookTool finds one of PostgreSQL's programs: in dir when given (the
// --pg-bin flag), else in SearchDirs, else on PATH.
func LookTool(name, dir string) (string, error) {
	p, err := source.LookTool(name, dir, SearchDirs...)
	if err != nil {
		return "", fmt.Errorf("%w (PostgreSQL client programs; give --pg-bin DIR)", err)
	}
	return p, nil
}

// Tool returns a command for one of PostgreSQL's programs with the
// password and service files in its environment. The connection string,
// without secrets (DSN), goes on the command line by the caller
// (--dbname).
func (c *Client) Tool(name string, args ...string) (*source.Command, error) {
	p, err := LookTool(name, c.cfg.BinDir)
	if err != nil {
		return nil, err
	}
	return &source.Command{Path: p, Args: args, Env: c.env, Stderr: c.cfg.Stderr}, nil
}

// DSN is the connection string for database db ("" keeps the
// configured one) without its secrets, for command lines: a program
// started by Tool finds them in its password and service files.
func (c *Client) DSN(db string) string {
	ci := c.cfg.Conn.WithoutSecrets()
	if db != "" {
		ci = ci.With("dbname", db)
	}
	if c.service != "" {
		ci = ci.With("service", c.service)
	}
	return ci.String()
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
		return nil, fmt.Errorf("connection settings: %s", redact(err.Error(), ci))
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %s", c.Server(), redact(err.Error(), ci))
	}
	return conn, nil
}

// redact removes the connection's secrets from a message.
func redact(msg string, ci ConnInfo) string {
	for _, k := range SecretKeys {
		if v := ci[k]; v != "" {
			msg = strings.ReplaceAll(msg, v, "***")
		}
	}
	return msg
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
