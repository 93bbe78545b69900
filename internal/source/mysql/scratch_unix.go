//go:build unix

package mysql

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

// Scratch is a throw-away MariaDB/MySQL server for restore drills: a
// fresh data directory in a temporary directory, a Unix socket only (no
// network), root without a password over that socket. As root it runs as
// the mysql user.
type Scratch struct {
	Dir    string
	Source *Source
	proc   *exec.Cmd
	cred   *syscall.Credential
	exited chan struct{}
}

// StartScratch initialises and starts a scratch server with the programs
// in toolDir ("" means PATH and /usr/sbin).
func StartScratch(ctx context.Context, toolDir string) (*Scratch, error) {
	find := func(names ...string) (string, error) {
		for _, n := range names {
			// Debian installs the server programs in /usr/sbin, which
			// is not on every PATH.
			if p, err := source.LookTool(n, toolDir, "/usr/sbin", "/usr/bin"); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s not found: a database drill needs the server programs", names[0])
	}
	installDB, err := find("mariadb-install-db", "mysql_install_db")
	if err != nil {
		return nil, err
	}
	server, err := find("mariadbd", "mysqld")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bunker-drill-my-")
	if err != nil {
		return nil, err
	}
	s := &Scratch{Dir: dir, exited: make(chan struct{})}
	if os.Geteuid() == 0 {
		uid, gid, err := source.LookupUser("mysql")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("a database drill as root runs the scratch server as the mysql user: %w", err)
		}
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "s.sock")
	install := exec.CommandContext(ctx, installDB, "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve")
	install.Env = source.ChildEnv()
	install.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := install.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %v: %s", filepath.Base(installDB), err, lastLines(string(out)))
	}
	s.proc = exec.Command(server, "--no-defaults", "--datadir="+data, "--socket="+sock, "--skip-networking",
		"--pid-file="+filepath.Join(dir, "pid"), "--log-error="+filepath.Join(dir, "err.log"),
		"--innodb-buffer-pool-size=128M", "--skip-name-resolve", "--skip-log-bin")
	// The server runs the SQL a drill restores: it holds no secret.
	s.proc.Env = source.ChildEnv()
	s.proc.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	if err := s.proc.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", filepath.Base(server), err)
	}
	go func() { _ = s.proc.Wait(); close(s.exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		src, err := Connect(ctx, Options{Conn: Conn{User: "root", Socket: sock}, ToolDir: toolDir})
		if err == nil {
			s.Source = src
			return s, nil
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "err.log"))
			s.Stop()
			return nil, fmt.Errorf("the scratch server exited: %s", lastLines(string(log)))
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("the scratch server did not accept connections within a minute: %v", err)
		}
	}
}

func lastLines(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, "; ")
}

// Query runs SQL in database db and returns the rows as the mariadb
// client prints them with -N -B: columns separated by tabs, rows by
// newlines, NULL as "NULL".
func (s *Scratch) Query(ctx context.Context, db, query string) (string, error) {
	conn, err := s.Source.db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if db != "" {
		if _, err := conn.ExecContext(ctx, "USE `"+strings.ReplaceAll(db, "`", "``")+"`"); err != nil {
			return "", err
		}
	}
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var out []string
	for rows.Next() {
		vals, err := scanStrings(rows, len(cols))
		if err != nil {
			return "", err
		}
		fields := make([]string, len(vals))
		for i, v := range vals {
			fields[i] = "NULL"
			if v.Valid {
				fields[i] = v.String
			}
		}
		out = append(out, strings.Join(fields, "\t"))
	}
	return strings.Join(out, "\n"), rows.Err()
}

// Stop shuts the server down and removes its directory.
func (s *Scratch) Stop() {
	if s.Source != nil {
		_ = s.Source.Close()
	}
	if s.proc != nil && s.proc.Process != nil {
		_ = syscall.Kill(-s.proc.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-s.proc.Process.Pid, syscall.SIGKILL)
			<-s.exited
		}
	}
	os.RemoveAll(s.Dir)
}
