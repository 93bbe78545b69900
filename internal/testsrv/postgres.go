//go:build unix

package testsrv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// PGServer is a PostgreSQL cluster started by Postgres, listening on a
// loopback port and a Unix socket in Dir, run by the postgres user.
type PGServer struct {
	Bin      string // the directory with initdb, pg_ctl, pg_dump, …
	Dir      string // owned by postgres; holds data/, the socket and the log
	DataDir  string
	Host     string // 127.0.0.1
	Port     int
	User     string // superuser, "postgres"
	Password string // the superuser's password (password auth on TCP)

	t    testing.TB
	opts PGOptions
	cred *syscall.Credential
}

// PGOptions configure a test cluster.
type PGOptions struct {
	// Settings are extra "-c name=value" server settings, e.g.
	// archive_command.
	Settings map[string]string
	// NoInit starts nothing: the caller lays down DataDir (a restore)
	// and calls Start.
	NoInit bool
}

// PGBinDir finds the newest /usr/lib/postgresql/*/bin, else the directory
// of initdb on PATH; "" when there is none.
func PGBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) < pgMajor(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// postgresCred is the postgres user's credential.
func postgresCred(t testing.TB) (*syscall.Credential, string) {
	t.Helper()
	if os.Getuid() != 0 {
		Missing(t, "PostgreSQL tests run the server as the postgres user and need root")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		Missing(t, "no postgres user (Debian package postgresql)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, u.HomeDir
}

// SharedDir returns a new directory that the postgres user (and everyone)
// can traverse and write: for repositories, WAL spools and restore
// targets that the server's archive_command touches.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o005); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Postgres initialises and starts a cluster for the test and stops it
// when the test ends. It skips the test (or fails it under
// BUNKER_REQUIRE_SERVERS=1) when PostgreSQL is not installed.
func Postgres(t testing.TB, opts PGOptions) *PGServer {
	t.Helper()
	bin := PGBinDir()
	if bin == "" {
		Missing(t, "PostgreSQL (initdb) is not installed")
	}
	cred, _ := postgresCred(t)
	dir := SharedDir(t)
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &PGServer{Bin: bin, Dir: dir, DataDir: filepath.Join(dir, "data"), Host: "127.0.0.1", Port: FreePort(t, 0),
		User: "postgres", Password: "pg secret 'pw'", t: t, opts: opts, cred: cred}
	t.Cleanup(s.stopQuietly)
	if opts.NoInit {
		return s
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chown(pwfile, int(cred.Uid), int(cred.Gid))
	s.run(t, "initdb", "-D", s.DataDir, "-U", "postgres", "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256",
		"--no-sync", "-E", "UTF8", "--locale=C.UTF-8")
	_ = os.Remove(pwfile)
	s.Start(t)
	return s
}

func (s *PGServer) cmd(name string, args ...string) *exec.Cmd {
	c := exec.Command(filepath.Join(s.Bin, name), args...)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	c.Dir = s.Dir
	c.Env = append(testutil.CleanEnviron(), "PGHOST="+s.Dir, "PGPORT="+strconv.Itoa(s.Port), "PGUSER=postgres")
	return c
}

func (s *PGServer) run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := s.cmd(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Start starts the server on DataDir and waits until it accepts
// connections.
func (s *PGServer) Start(t testing.TB) {
	t.Helper()
	o := []string{"-c listen_addresses=127.0.0.1", "-p " + strconv.Itoa(s.Port), "-k " + s.Dir,
		"-c wal_level=replica", "-c max_wal_senders=5", "-c fsync=off", "-c full_page_writes=on"}
	keys := make([]string, 0, len(s.opts.Settings))
	for k := range s.opts.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o = append(o, fmt.Sprintf("-c %s=%s", k, shellQuote(s.opts.Settings[k])))
	}
	_ = os.Chmod(s.DataDir, 0o700)
	s.run(t, "pg_ctl", "-D", s.DataDir, "-l", filepath.Join(s.Dir, "pg.log"), "-w", "-t", "120", "-s", "-o", strings.Join(o, " "), "start")
}

// Stop stops the server (fast shutdown).
func (s *PGServer) Stop(t testing.TB) {
	t.Helper()
	s.run(t, "pg_ctl", "-D", s.DataDir, "-m", "fast", "-w", "-s", "stop")
}

func (s *PGServer) stopQuietly() {
	if _, err := os.Stat(filepath.Join(s.DataDir, "postmaster.pid")); err == nil {
		out, err := s.cmd("pg_ctl", "-D", s.DataDir, "-m", "immediate", "-w", "-s", "stop").CombinedOutput()
		if err != nil && s.t.Failed() {
			s.t.Logf("stopping postgres: %v: %s", err, out)
		}
	}
	if s.t.Failed() {
		if b, err := os.ReadFile(filepath.Join(s.Dir, "pg.log")); err == nil {
			s.t.Logf("postgres log:\n%s", tail(string(b), 4000))
		}
	}
}

// Kill sends SIGKILL to the postmaster; the server's children die with
// it (they notice the postmaster is gone).
func (s *PGServer) Kill(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.DataDir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	// Backends exit when they notice; wait for the port to close.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// DSN is a libpq URL for the superuser over TCP, with the password.
func (s *PGServer) DSN(db string) string {
	return fmt.Sprintf("postgresql://postgres:%s@127.0.0.1:%d/%s", urlEscape(s.Password), s.Port, db)
}

// PSQL runs SQL as the superuser over the socket and returns the
// unaligned, tuples-only output.
func (s *PGServer) PSQL(t testing.TB, db, sql string) string {
	t.Helper()
	c := s.cmd("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", db, "-c", sql)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimRight(string(out), "\n")
}

// Tool runs one of the PostgreSQL programs as postgres against this
// server's socket and returns its standard output.
func (s *PGServer) Tool(t testing.TB, name string, args ...string) string {
	t.Helper()
	c := s.cmd(name, args...)
	var stderr strings.Builder
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// Cred is the postgres user's credential, for running programs as it.
func (s *PGServer) Cred() *syscall.Credential { return s.cred }

// WaitArchived waits until the server reports the WAL segment of the
// current insert position archived: it switches WAL first.
func (s *PGServer) WaitArchived(t testing.TB) string {
	t.Helper()
	seg := s.PSQL(t, "postgres", "SELECT pg_walfile_name(pg_switch_wal())")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		last := s.PSQL(t, "postgres", "SELECT coalesce(last_archived_wal, '') || ' ' || failed_count || ' ' || coalesce(last_failed_wal, '') FROM pg_stat_archiver")
		if f := strings.Fields(last); len(f) > 0 && f[0] >= seg {
			return seg
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("segment %s not archived in time; log:\n%s", seg, s.Log())
	return ""
}

// Log is the end of the server log.
func (s *PGServer) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "pg.log"))
	return tail(string(b), 4000)
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " '\"\\$`;&|<>()*?[]#~%\t\n") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func urlEscape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
