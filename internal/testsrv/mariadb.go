//go:build unix

package testsrv

import (
	"context"
	"database/sql"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// MariaDBPassword is the root password of the test servers: it has the
// characters that break careless quoting in option files, URLs and shells.
const MariaDBPassword = `r00t pa$$ "w'rd" #1 \x;`

// MariaDBServer is a MariaDB server started by MariaDB on a loopback port
// and a Unix socket in Dir, with binary logging (ROW format) on, run by
// the mysql user when the tests run as root.
type MariaDBServer struct {
	Host     string // 127.0.0.1
	Port     int
	Socket   string
	Dir      string // the server's directory: data/ and the socket
	DataDir  string
	User     string // "root", with Password on localhost, 127.0.0.1 and ::1
	Password string

	opts MariaDBOptions
	bin  string
	cred *syscall.Credential
	mu   sync.Mutex
	proc *Process
	db   *sql.DB
}

// MariaDBOptions configure a test server.
type MariaDBOptions struct {
	// DataDir starts the server on an existing data directory (a
	// restored one, owned by the server's user) instead of a new one; its
	// root password must be Password.
	DataDir string
	// Password is root's password (default MariaDBPassword).
	Password string
	// NoBinlog turns binary logging off.
	NoBinlog bool
}

// MariaDB starts a new, empty MariaDB server for the test and stops it
// when the test ends. Every call starts another one (a restore target).
// It skips the test (or fails it under BUNKER_REQUIRE_SERVERS=1) when
// MariaDB is not installed.
func MariaDB(t testing.TB) *MariaDBServer { return MariaDBWith(t, MariaDBOptions{}) }

// MariaDBWith is MariaDB with options.
func MariaDBWith(t testing.TB, o MariaDBOptions) *MariaDBServer {
	t.Helper()
	bin := LookTool("mariadbd", "")
	if bin == "" {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err == nil {
			bin = "/usr/sbin/mariadbd"
		}
	}
	install := LookTool("mariadb-install-db", "")
	if bin == "" || install == "" {
		Missing(t, "mariadbd or mariadb-install-db (Debian packages mariadb-server mariadb-backup) is not installed")
	}
	if o.Password == "" {
		o.Password = MariaDBPassword
	}
	s := &MariaDBServer{Host: "127.0.0.1", Port: FreePort(t, 0), User: "root", Password: o.Password, opts: o, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("mysql")
		if err != nil {
			Missing(t, "no mysql user to run MariaDB as (Debian package mariadb-server)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	s.Dir = MariaDBDir(t)
	s.Socket = filepath.Join(s.Dir, "s.sock")
	fresh := o.DataDir == ""
	if fresh {
		s.DataDir = filepath.Join(s.Dir, "data")
		cmd := exec.Command(install, "--no-defaults", "--datadir="+s.DataDir, "--auth-root-authentication-method=normal",
			"--skip-test-db", "--skip-name-resolve")
		cmd.Dir = s.Dir
		cmd.Env = testutil.CleanEnviron()
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mariadb-install-db: %v\n%s", err, out)
		}
	} else {
		s.DataDir = o.DataDir
	}
	s.Start(t)
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.db != nil {
			_ = s.db.Close()
		}
	})
	if fresh {
		// root has no password yet: set it through the socket, and drop
		// the root@<hostname> account, which --skip-name-resolve makes
		// unusable (and mariadb-dump --system=users chokes on).
		cfg := driver.NewConfig()
		cfg.User, cfg.Net, cfg.Addr = "root", "unix", s.Socket
		cfg.Logger = mariadbNopLogger{}
		conn, err := driver.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		defer db.Close()
		rows, err := db.Query("SELECT Host FROM mysql.user WHERE User = 'root'")
		if err != nil {
			t.Fatalf("mariadb: list root accounts: %v", err)
		}
		var hosts []string
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				t.Fatal(err)
			}
			hosts = append(hosts, h)
		}
		_ = rows.Close()
		for _, h := range hosts {
			q := "ALTER USER 'root'@" + MariaDBQuote(h) + " IDENTIFIED BY " + MariaDBQuote(s.Password)
			if h != "localhost" && h != "127.0.0.1" && h != "::1" {
				q = "DROP USER 'root'@" + MariaDBQuote(h)
			}
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("mariadb: %s: %v", strings.ReplaceAll(q, MariaDBQuote(s.Password), "'***'"), err)
			}
		}
	}
	return s
}

// MariaDBDir makes a directory for a server's files (or a restored data
// directory) that the server's user owns and can reach: its parents are
// made traversable.
func MariaDBDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("mysql")
		if err != nil {
			Missing(t, "no mysql user to run MariaDB as (Debian package mariadb-server)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// MariaDBQuote quotes s as an SQL string literal.
func MariaDBQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`).Replace(s) + "'"
}

type mariadbNopLogger struct{}

func (mariadbNopLogger) Print(...any) {}

// Addr is host:port.
func (s *MariaDBServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// DSN is the bunker connection URL of root over TCP, with the password.
func (s *MariaDBServer) DSN() string {
	u := url.URL{Scheme: "mysql", User: url.UserPassword(s.User, s.Password), Host: s.Addr(), Path: "/"}
	return u.String()
}

// Start starts the server (again, after Stop or Kill) on the same data
// directory and port and waits until it answers.
func (s *MariaDBServer) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil && !s.proc.Exited() {
		t.Fatalf("mariadb: already running")
	}
	args := []string{"--no-defaults", "--datadir=" + s.DataDir, "--socket=" + s.Socket, "--port=" + strconv.Itoa(s.Port),
		"--bind-address=127.0.0.1", "--pid-file=" + filepath.Join(s.Dir, "mariadbd.pid"), "--skip-name-resolve",
		"--innodb-buffer-pool-size=64M", "--server-id=1", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"}
	if !s.opts.NoBinlog {
		args = append(args, "--log-bin="+filepath.Join(s.DataDir, "binlog"), "--binlog-format=ROW")
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	s.proc = Start(t, "mariadbd", cmd)
	s.proc.WaitFor(t, 30*time.Second, func(ctx context.Context) bool {
		c, err := (&net.Dialer{}).DialContext(ctx, "unix", s.Socket)
		if err != nil {
			return false
		}
		_ = c.Close()
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr())
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

// Stop shuts the server down cleanly (SIGTERM) and waits for it.
func (s *MariaDBServer) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		p.Stop()
	}
}

// Kill kills the server with SIGKILL and waits for it.
func (s *MariaDBServer) Kill() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// DB is a connection pool to the server as root over TCP.
func (s *MariaDBServer) DB(t testing.TB) *sql.DB {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		cfg := driver.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = s.User, s.Password, "tcp", s.Addr()
		cfg.Logger = mariadbNopLogger{}
		cfg.Timeout = 10 * time.Second
		conn, err := driver.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.db = sql.OpenDB(conn)
	}
	return s.db
}

// Exec runs statements, failing the test on the first error.
func (s *MariaDBServer) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	db := s.DB(t)
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("mariadb: %s: %v", q, err)
		}
	}
}

// Query runs a query and returns its rows as strings (NULL as "NULL").
func (s *MariaDBServer) Query(t testing.TB, q string, args ...any) [][]string {
	t.Helper()
	rows, err := s.DB(t).Query(q, args...)
	if err != nil {
		t.Fatalf("mariadb: %s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = "NULL"
			if v.Valid {
				row[i] = v.String
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("mariadb: %s: %v", q, err)
	}
	return out
}
