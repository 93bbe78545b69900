package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
)

// TestDBConnEnvironment: each database's connection settings fall back
// to their environment variables, and a password file (without its line
// ending) wins over the password of the DSN, URI or environment.
func TestDBConnEnvironment(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"BUNKER_POSTGRES_DSN": "host=db1 user=u password=from-dsn",
		"BUNKER_MYSQL_DSN":    "mysql://u@db2:3307/",
		"MYSQL_PWD":           "from-env",
		"BUNKER_MONGODB_URI":  "mongodb://u@db3/",
	}
	getenv := func(k string) string { return env[k] }

	pg, err := app.PostgresConn{}.Config(getenv, nil)
	if err != nil || pg.Conn["host"] != "db1" || pg.Conn["password"] != "from-dsn" {
		t.Errorf("postgres from the environment: %v, %v", pg.Conn, err)
	}
	if pg, err = (app.PostgresConn{PasswordFile: pwFile}).Config(getenv, nil); err != nil || pg.Conn["password"] != "from-file" {
		t.Errorf("postgres password file: %v", err)
	}
	my, err := app.MySQLConn{ToolDir: "/opt/tools"}.Options(getenv)
	if err != nil || my.Conn.Host != "db2" || my.Conn.Port != 3307 || my.Conn.Password != "from-env" || my.ToolDir != "/opt/tools" {
		t.Errorf("mysql from the environment: %+v, %v", my.Conn, err)
	}
	if my, err = (app.MySQLConn{PasswordFile: pwFile}).Options(getenv); err != nil || my.Conn.Password != "from-file" {
		t.Errorf("mysql password file: %v", err)
	}
	mg, err := app.MongoConn{PasswordFile: pwFile}.Config(getenv)
	if err != nil || mg.URI != "mongodb://u@db3/" || !mg.PasswordSet || mg.Password != "from-file" {
		t.Errorf("mongodb: %+v, %v", mg, err)
	}
	_, err = app.MySQLConn{PasswordFile: filepath.Join(t.TempDir(), "missing")}.Options(getenv)
	if err == nil || !strings.Contains(err.Error(), "MySQL password file") {
		t.Errorf("a missing password file: %v", err)
	}
}
