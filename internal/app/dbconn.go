package app

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bunkerbackup/bunker/internal/source/mongodb"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// The connection settings below are how a front end names a database
// server: what the user gave (flags, a plan's secret) completed from the
// environment, so that every front end and plan job resolves DSNs,
// password files and variables the same way.

// PostgresConn names a PostgreSQL server.
type PostgresConn struct {
	// DSN is a libpq connection string or URI; "" means
	// $BUNKER_POSTGRES_DSN, else libpq's PG* variables.
	DSN string
	// PasswordFile, when set, holds the password (else the DSN's,
	// PGPASSWORD or ~/.pgpass).
	PasswordFile string
	// BinDir holds pg_dump and the other programs (see postgres.Config).
	BinDir string
}

// Config is the server configuration of c in the environment getenv;
// stderr, when set, receives the programs' standard error.
func (c PostgresConn) Config(getenv func(string) string, stderr io.Writer) (postgres.Config, error) {
	dsn := c.DSN
	if dsn == "" {
		dsn = getenv("BUNKER_POSTGRES_DSN")
	}
	ci, err := postgres.ParseConnInfo(dsn)
	if err != nil {
		return postgres.Config{}, err
	}
	if c.PasswordFile != "" {
		pw, err := readSecretFile(c.PasswordFile)
		if err != nil {
			return postgres.Config{}, fmt.Errorf("--db-password-file: %w", err)
		}
		ci = ci.With("password", pw)
	}
	return postgres.Config{Conn: ci, BinDir: c.BinDir, Stderr: stderr, Getenv: getenv}, nil
}

// MySQLConn names a MySQL or MariaDB server.
type MySQLConn struct {
	// DSN is mysql://USER:PASSWORD@HOST:PORT/?socket=PATH; "" means
	// $BUNKER_MYSQL_DSN, else the local server's default socket.
	DSN string
	// PasswordFile, when set, holds the password; else the DSN's, else
	// $MYSQL_PWD.
	PasswordFile string
	// ToolDir holds mariadb-dump and the other tools ("": PATH).
	ToolDir string
}

// Options are the connection options of c in the environment getenv.
func (c MySQLConn) Options(getenv func(string) string) (mysql.Options, error) {
	dsn := c.DSN
	if dsn == "" {
		dsn = getenv("BUNKER_MYSQL_DSN")
	}
	o := mysql.Options{ToolDir: c.ToolDir}
	if dsn != "" {
		var err error
		if o.Conn, err = mysql.ParseDSN(dsn); err != nil {
			return o, err
		}
	}
	switch {
	case c.PasswordFile != "":
		pw, err := readSecretFile(c.PasswordFile)
		if err != nil {
			return o, fmt.Errorf("read the MySQL password file: %w", err)
		}
		o.Conn.Password = pw
	case o.Conn.Password == "":
		o.Conn.Password = getenv("MYSQL_PWD")
	}
	return o, nil
}

// MongoConn names a MongoDB server, replica set or cluster.
type MongoConn struct {
	// URI is a mongodb:// or mongodb+srv:// URI; "" means
	// $BUNKER_MONGODB_URI.
	URI string
	// PasswordFile, when set (else $BUNKER_MONGODB_PASSWORD_FILE), holds
	// the password, which replaces the URI's.
	PasswordFile string
}

// Server is the connection configuration of c in the environment getenv,
// unchecked: a restore into a directory needs none, so it is checked
// where it is used (Config checks it at once).
func (c MongoConn) Server(getenv func(string) string) (mongodb.Config, error) {
	cfg := mongodb.Config{URI: c.URI}
	if cfg.URI == "" {
		cfg.URI = getenv("BUNKER_MONGODB_URI")
	}
	pf := c.PasswordFile
	if pf == "" {
		pf = getenv("BUNKER_MONGODB_PASSWORD_FILE")
	}
	if pf != "" {
		pw, err := readSecretFile(pf)
		if err != nil {
			return cfg, fmt.Errorf("--db-password-file: %w", err)
		}
		cfg.Password, cfg.PasswordSet = pw, true
	}
	return cfg, nil
}

// Config is Server, checked.
func (c MongoConn) Config(getenv func(string) string) (mongodb.Config, error) {
	cfg, err := c.Server(getenv)
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// mongoTools finds mongodump in dir, else on the PATH of getenv, which
// the program also gets; stderr, when set, receives its standard error.
func mongoTools(dir string, getenv func(string) string, stderr io.Writer) (mongodb.Tools, error) {
	path := getenv("PATH")
	t := mongodb.Tools{Env: []string{"PATH=" + path}, Stderr: stderr}
	var err error
	t.Mongodump, err = mongodb.LookPath("mongodump", dir, path)
	return t, err
}

// readSecretFile returns a password kept in a file, without the line
// ending an editor leaves.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
