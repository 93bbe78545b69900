//go:build unix

package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// TestToolsArgvHoldNoSecret is a local user reading /proc/PID/cmdline
// while bunker backs up: every PostgreSQL program it starts — pg_dump,
// pg_dumpall, pg_basebackup, psql, pg_restore — runs through a wrapper
// that records its own /proc/self/cmdline before exec'ing the real
// program with the same arguments. A connection string with a password
// and an sslpassword must back up, and neither secret may appear in any
// recorded command line.
func TestToolsArgvHoldNoSecret(t *testing.T) {
	pg := testsrv.Postgres(t, testsrv.PGOptions{})
	pg.PSQL(t, "postgres", "CREATE DATABASE app; ")
	pg.PSQL(t, "app", "CREATE TABLE t AS SELECT g AS n FROM generate_series(1, 100) g")
	const sslSecret = "ssl-key-passphrase-7f3a"
	ci, err := ParseConnInfo(pg.DSN("postgres") + "?sslmode=disable&sslpassword=" + sslSecret)
	if err != nil {
		t.Fatal(err)
	}

	wrap := t.TempDir()
	record := filepath.Join(wrap, "cmdlines")
	var names []string
	for _, name := range []string{"pg_dump", "pg_dumpall", "pg_basebackup", "psql", "pg_restore"} {
		names = append(names, name)
		script := fmt.Sprintf("#!/bin/sh\ntr '\\0' ' ' < /proc/$$/cmdline >> '%s'\necho >> '%s'\nexec '%s' \"$@\"\n",
			record, record, filepath.Join(pg.Bin, name))
		if err := os.WriteFile(filepath.Join(wrap, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Open(Config{Conn: ci, BinDir: wrap, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, f := range []string{c.passfile, c.servicefile} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("secret file %s: %v %v, want mode 0600", f, fi, err)
		}
	}

	ctx := context.Background()
	sink := newMemSink()
	if _, err := c.BackupLogical(ctx, sink, LogicalOptions{Databases: []string{"app"}}); err != nil {
		t.Fatalf("logical backup: %v", err)
	}
	if _, err := c.BackupPhysical(ctx, newMemSink(), PhysicalOptions{FastCheckpoint: true}); err != nil {
		t.Fatalf("physical backup: %v", err)
	}
	pg.PSQL(t, "postgres", "DROP DATABASE app")
	if err := c.RestoreLogical(ctx, memTree{sink}, RestoreOptions{Jobs: 1}); err != nil {
		t.Fatalf("logical restore: %v", err)
	}
	if n := pg.PSQL(t, "app", "SELECT count(*) FROM t"); n != "100" {
		t.Errorf("restored %s rows, want 100", n)
	}

	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, name := range names {
		if !strings.Contains(got, "/"+name+" ") {
			t.Errorf("%s never ran through the wrapper:\n%s", name, got)
		}
	}
	if !strings.Contains(got, "service='bunker-") {
		t.Errorf("the command lines do not name the service with the secrets:\n%s", got)
	}
	for _, secret := range []string{pg.Password, sslSecret, "pg secret", `pg secret \'pw\'`} {
		if strings.Contains(got, secret) {
			t.Errorf("a command line holds the secret %q:\n%s", secret, got)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSecretFilesRefused: a secret libpq could not read back from a
// service file, or a service= that would clash with bunker's own, is
// refused with the keyword named and the value not shown.
func TestSecretFilesRefused(t *testing.T) {
	for _, tc := range []struct {
		ci   ConnInfo
		want string
	}{
		{ConnInfo{"sslpassword": "trailing-space-secret "}, "sslpassword holds a line break or ends with white space"},
		{ConnInfo{"sslpassword": "line\nbreak-secret"}, "sslpassword holds a line break"},
		{ConnInfo{"sslpassword": "clash-secret", "service": "prod"}, "service=prod cannot be combined with sslpassword"},
	} {
		dir := t.TempDir()
		_, err := Open(Config{Conn: tc.ci.With("password", "pw-secret"), TempDir: dir})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: %v, want %q without the secret", tc.ci, err, tc.want)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%v: left %v behind", tc.ci, left)
		}
	}
}

// memTree reads back what a memSink recorded (files only).
type memTree struct{ s *memSink }

func (m memTree) Stat(ctx context.Context, p string) (source.Entry, error) {
	return source.Entry{}, fmt.Errorf("memTree: no Stat")
}

func (m memTree) List(ctx context.Context, p string) ([]source.Entry, error) {
	return nil, fmt.Errorf("memTree: no List")
}

func (m memTree) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	b, ok := m.s.files[p]
	if !ok {
		return nil, fmt.Errorf("memTree: no file %s", p)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
