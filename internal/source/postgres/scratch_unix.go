//go:build unix

package postgres

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

// Scratch is a throw-away PostgreSQL cluster for restore drills: initdb
// in a temporary directory, a loopback port, trust authentication for
// its own superuser over its socket only. As root it runs as the
// postgres user (initdb refuses root).
type Scratch struct {
	Dir    string
	Port   int
	Client *Client
	bin    string
	cred   *syscall.Credential
	owner  string
}

// StartScratch initialises and starts a scratch cluster with the
// programs in binDir ("" finds them).
func StartScratch(ctx context.Context, binDir string) (*Scratch, error) {
	initdb, err := LookTool("initdb", binDir)
	if err != nil {
		return nil, fmt.Errorf("a database drill needs the PostgreSQL server programs: %w", err)
	}
	// The server and its client programs come from initdb's directory.
	binDir = filepath.Dir(initdb)
	s := &Scratch{bin: binDir, owner: "postgres"}
	dir, err := os.MkdirTemp("", "bunker-drill-pg-")
	if err != nil {
		return nil, err
	}
	s.Dir = dir
	if os.Geteuid() == 0 {
		uid, gid, err := source.LookupUser("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("a database drill as root runs the scratch server as the postgres user: %w", err)
		}
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	} else if u, err := user.Current(); err == nil {
		s.owner = u.Username
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	data := filepath.Join(dir, "data")
	if err := s.run(ctx, "initdb", "-D", data, "-U", s.owner, "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		s.Stop()
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c full_page_writes=off", s.Port, dir)
	if err := s.run(ctx, "pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "120", "-s", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		s.Stop()
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(string(log)))
	}
	c, err := Open(Config{Conn: ConnInfo{"host": dir, "port": strconv.Itoa(s.Port), "user": s.owner, "dbname": "postgres"}, BinDir: binDir})
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.Client = c
	return s, nil
}

func (s *Scratch) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.Dir
	// pg_ctl's environment is the server's: SQL a drill restores runs
	// there as superuser (COPY FROM PROGRAM), so it holds no secret.
	cmd.Env = source.ChildEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Query runs SQL in database db and returns psql's unaligned,
// tuples-only output.
func (s *Scratch) Query(ctx context.Context, db, sql string) (string, error) {
	cmd, err := s.Client.Tool("psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "--dbname="+s.Client.DSN(db), "-c", sql)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput(ctx)
	return strings.TrimSpace(string(out)), err
}

// Stop stops the cluster and removes its directory.
func (s *Scratch) Stop() {
	if _, err := os.Stat(filepath.Join(s.Dir, "data", "postmaster.pid")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = s.run(ctx, "pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "-s", "stop")
		cancel()
	}
	if s.Client != nil {
		s.Client.Close()
	}
	os.RemoveAll(s.Dir)
}
