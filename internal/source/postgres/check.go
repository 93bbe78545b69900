package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// ArchiveSetup is how the server archives WAL: archive_mode,
// archive_command (or archive_library) and its system identifier.
type ArchiveSetup struct {
	Mode             string
	Command          string
	Library          string
	SystemIdentifier string
}

// Problem says what keeps the server from archiving WAL, "" when
// nothing; Remark what looks wrong without being fatal (an
// archive_command that is not bunker's wal-push).
func (s ArchiveSetup) Problem() (problem, remark string) {
	switch {
	case s.Mode != "on" && s.Mode != "always":
		return fmt.Sprintf("archive_mode is %q: WAL archiving is off (set archive_mode = on and restart the server)", s.Mode), ""
	case s.Command == "" && s.Library == "":
		return "archive_command is not set: the server keeps its WAL until one is (see docs/POSTGRESQL.md)", ""
	case s.Library != "" && s.Command == "":
		return "", fmt.Sprintf("archive_library is %q: WAL goes to that module, not to bunker's wal-push", s.Library)
	case !strings.Contains(s.Command, "wal-push"):
		return "", fmt.Sprintf("archive_command %q does not run bunker's wal-push", s.Command)
	}
	return "", ""
}

// ArchiveSetup reads the server's archiving settings.
func (c *Client) ArchiveSetup(ctx context.Context) (*ArchiveSetup, error) {
	conn, err := c.Connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	s := &ArchiveSetup{}
	if err := conn.QueryRow(ctx, `SELECT current_setting('archive_mode'), current_setting('archive_command'),
		coalesce(current_setting('archive_library', true), '')`).Scan(&s.Mode, &s.Command, &s.Library); err != nil {
		return nil, fmt.Errorf("read archive_mode and archive_command: %w", err)
	}
	if s.Command == "(disabled)" {
		s.Command = ""
	}
	var sysid int64
	if err := conn.QueryRow(ctx, "SELECT system_identifier FROM pg_control_system()").Scan(&sysid); err != nil {
		return nil, fmt.Errorf("read the system identifier (pg_control_system): %w", err)
	}
	s.SystemIdentifier = strconv.FormatUint(uint64(sysid), 10)
	return s, nil
}

// SwitchWAL writes a little WAL (a transaction ID's commit) and switches
// to a new segment, so that the server archives the one it closed, and
// returns that segment's name.
func (c *Client) SwitchWAL(ctx context.Context) (string, error) {
	conn, err := c.Connect(ctx, "")
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT txid_current()"); err != nil {
		return "", fmt.Errorf("write WAL: %w", err)
	}
	var seg string
	if err := conn.QueryRow(ctx, "SELECT pg_walfile_name(pg_switch_wal())").Scan(&seg); err != nil {
		return "", fmt.Errorf("pg_switch_wal() (needs a superuser or EXECUTE on it): %w", err)
	}
	return seg, nil
}

// ArchiverStatus reads the server's pg_stat_archiver.
func (c *Client) ArchiverStatus(ctx context.Context) (ArchiverStatus, error) {
	conn, err := c.Connect(ctx, "")
	if err != nil {
		return ArchiverStatus{}, err
	}
	defer conn.Close(context.Background())
	return archiverStatus(ctx, conn)
}
