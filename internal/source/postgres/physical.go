package postgres

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/jackc/pgx/v5"
)

// Layout of a physical backup in the snapshot tree: the data directory
// under pgdata/, our facts beside it.
const (
	PGDataDir        = "pgdata"
	PhysicalManifest = "postgres/physical.json"
	physicalFormat   = "bunker-postgres-physical/1"
)

// PhysicalManifestData is postgres/physical.json.
type PhysicalManifestData struct {
	Format           string    `json:"format"`
	ServerVersion    string    `json:"server_version,omitempty"`
	SystemIdentifier string    `json:"system_identifier"`
	Timeline         int       `json:"timeline"`
	StartLSN         string    `json:"start_lsn"`
	StopLSN          string    `json:"stop_lsn,omitempty"`
	StartWALFile     string    `json:"start_wal_file"`
	WALMethod        string    `json:"wal_method"` // fetch: pg_wal holds what the backup needs; none: the archive does
	Started          time.Time `json:"started"`
	Finished         time.Time `json:"finished"`
	Files            int64     `json:"files"`
	Bytes            int64     `json:"bytes"`
}

// PhysicalOptions configure a base backup.
type PhysicalOptions struct {
	// WALMethod is pg_basebackup's -X: "fetch" (default) makes the
	// backup self-contained; "none" relies on the WAL archive
	// (bunker pg wal-push or wal-receive).
	WALMethod string
	Label     string
	// FastCheckpoint starts at once instead of waiting for the next
	// spread checkpoint.
	FastCheckpoint bool
	MaxRate        string // pg_basebackup --max-rate, e.g. "100M"
	// ArchiveTimeout bounds how long the server may wait, at the end of
	// a backup with WALMethod "none", for the WAL the backup needs to be
	// archived; a failing archive_command makes it wait forever. 0 means
	// DefaultArchiveTimeout.
	ArchiveTimeout time.Duration
	// OnArchiveWait, when set, is called when the server starts waiting
	// for WAL archiving and then every ArchiveWaitReport while it waits.
	OnArchiveWait func(ArchiveWait)
}

// DefaultArchiveTimeout is the default PhysicalOptions.ArchiveTimeout
// (pgBackRest's archive-timeout).
const DefaultArchiveTimeout = 60 * time.Second

// ArchiveWaitReport is how often OnArchiveWait hears of a continuing wait.
const ArchiveWaitReport = 10 * time.Second

// archivePoll is how often a backup relying on the archive checks whether
// the server waits for it.
const archivePoll = time.Second

// ArchiveWait is the state of a base backup waiting for WAL archiving.
type ArchiveWait struct {
	Waited, Timeout time.Duration
	Archiver        ArchiverStatus
}

// ArchiverStatus is the server's pg_stat_archiver.
type ArchiverStatus struct {
	ArchivedCount, FailedCount int64
	LastArchivedWAL            string
	LastArchivedTime           time.Time
	LastFailedWAL              string
	LastFailedTime             time.Time
}

// String says what the archiver last did, for messages.
func (s ArchiverStatus) String() string {
	var b strings.Builder
	b.WriteString("pg_stat_archiver: ")
	if s.LastFailedWAL != "" {
		fmt.Fprintf(&b, "last failed WAL %s at %s (%d failures), ", s.LastFailedWAL, s.LastFailedTime.UTC().Format(time.RFC3339), s.FailedCount)
	} else {
		b.WriteString("no failure, ")
	}
	if s.LastArchivedWAL != "" {
		fmt.Fprintf(&b, "last archived WAL %s at %s", s.LastArchivedWAL, s.LastArchivedTime.UTC().Format(time.RFC3339))
	} else {
		b.WriteString("nothing archived yet")
	}
	return b.String()
}

// ArchiveTimeoutError ends a base backup whose WAL the server did not
// archive within the archive timeout.
type ArchiveTimeoutError struct {
	Timeout  time.Duration
	Archiver ArchiverStatus
}

func (e *ArchiveTimeoutError) Error() string {
	return fmt.Sprintf("base backup: the server's WAL archiving did not complete within the archive timeout (%v); %v; see archive_command and the server log", e.Timeout, e.Archiver)
}

// BackupPhysical takes a base backup with pg_basebackup as a tar stream
// and stores every file of it under pgdata/ (so unchanged files
// deduplicate against earlier backups), with the backup manifest that
// pg_verifybackup checks on restore. It returns the snapshot metadata.
func (c *Client) BackupPhysical(ctx context.Context, sink source.Sink, o PhysicalOptions) (map[string]string, error) {
	method := o.WALMethod
	if method == "" {
		method = "fetch"
	}
	if method != "fetch" && method != "none" {
		return nil, fmt.Errorf("WAL method %q: use fetch or none (stream needs a directory, not a stream)", method)
	}
	label := o.Label
	if label == "" {
		label = "bunker base backup"
	}
	timeout := o.ArchiveTimeout
	if timeout == 0 {
		timeout = DefaultArchiveTimeout
	}
	if timeout < 0 {
		return nil, fmt.Errorf("archive timeout %v: must be positive", timeout)
	}
	// The server's process for this backup is found by its application
	// name, to watch it wait for the archive.
	var tag [8]byte
	_, _ = rand.Read(tag[:])
	appName := "bunker-basebackup-" + hex.EncodeToString(tag[:])
	dsn := c.cfg.Conn.With("application_name", appName).Public()
	args := []string{"--pgdata=-", "--format=tar", "--wal-method=" + method, "--manifest-checksums=SHA256",
		"--label=" + label, "--no-password", "--dbname=" + dsn}
	if o.FastCheckpoint {
		args = append(args, "--checkpoint=fast")
	}
	if o.MaxRate != "" {
		args = append(args, "--max-rate="+o.MaxRate)
	}
	cmd, err := c.Tool("pg_basebackup", args...)
	if err != nil {
		return nil, err
	}
	m := &PhysicalManifestData{Format: physicalFormat, WALMethod: method, Started: time.Now().UTC()}
	var label_, manifest []byte
	var version string
	bctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watched := make(chan struct{})
	if method == "none" {
		// Only then does the server wait for the archive (pg_basebackup
		// asks for no wait when it fetches the WAL itself).
		go func() {
			defer close(watched)
			c.watchArchive(bctx, appName, timeout, o.OnArchiveWait, cancel)
		}()
	} else {
		close(watched)
	}
	err = cmd.Output(bctx, func(r io.Reader) error {
		return readBaseTar(ctx, r, sink, m, func(name string, b []byte) {
			switch name {
			case "backup_label":
				label_ = b
			case "backup_manifest":
				manifest = b
			case "PG_VERSION":
				version = strings.TrimSpace(string(b))
			case "global/pg_control":
				if len(b) >= 8 {
					m.SystemIdentifier = strconv.FormatUint(binary.LittleEndian.Uint64(b), 10)
				}
			}
		})
	})
	var timedOut *ArchiveTimeoutError
	if errors.As(context.Cause(bctx), &timedOut) {
		err = timedOut
	}
	cancel(nil)
	<-watched
	if err != nil {
		return nil, err
	}
	if label_ == nil || manifest == nil || m.SystemIdentifier == "" {
		return nil, errors.New("pg_basebackup's output lacks backup_label, backup_manifest or global/pg_control")
	}
	if err := parseBackupLabel(label_, m); err != nil {
		return nil, err
	}
	if stop, err := manifestStopLSN(manifest); err == nil {
		m.StopLSN = stop
	} else {
		return nil, err
	}
	m.ServerVersion = version
	if info, err := c.Info(ctx); err == nil {
		m.ServerVersion = info.Version
	}
	m.Finished = time.Now().UTC()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := source.WriteBytes(ctx, sink, PhysicalManifest, append(b, '\n'), nil); err != nil {
		return nil, err
	}
	return Metadata{Type: TypePhysical, Server: c.Server(), ServerVersion: m.ServerVersion, SystemIdentifier: m.SystemIdentifier,
		Timeline: uint32(m.Timeline), StartLSN: m.StartLSN, StopLSN: m.StopLSN, StartWALFile: m.StartWALFile, WALMethod: method}.Map(), nil
}

// smallFiles are kept in memory as they stream past, for their facts.
var smallFiles = map[string]bool{"backup_label": true, "backup_manifest": true, "PG_VERSION": true, "global/pg_control": true}

// readBaseTar stores the entries of a pg_basebackup tar stream.
func readBaseTar(ctx context.Context, r io.Reader, sink source.Sink, m *PhysicalManifestData, keep func(name string, b []byte)) error {
	tr := tar.NewReader(bufio.NewReaderSize(r, 1<<20))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("base backup stream after %d files: %w", m.Files, err)
		}
		name, err := tarName(hdr.Name)
		if err != nil {
			return err
		}
		meta := &source.Meta{Mode: fs.FileMode(hdr.Mode).Perm(), ModTime: hdr.ModTime, UID: uint32(hdr.Uid), GID: uint32(hdr.Gid),
			User: hdr.Uname, Group: hdr.Gname}
		p := PGDataDir + "/" + name
		if name == "" {
			p = PGDataDir // "./": the data directory itself
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := sink.Mkdir(p, meta); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := sink.Symlink(p, hdr.Linkname, meta); err != nil {
				return err
			}
		case tar.TypeReg:
			var rd io.Reader = tr
			if smallFiles[name] && hdr.Size <= 64<<20 {
				b, err := io.ReadAll(tr)
				if err != nil {
					return fmt.Errorf("base backup stream: %s: %w", name, err)
				}
				keep(name, b)
				rd = bytes.NewReader(b)
			}
			n, err := sink.WriteFile(ctx, p, rd, meta)
			if err != nil {
				return fmt.Errorf("base backup stream: %s: %w", name, err)
			}
			if n != hdr.Size {
				return fmt.Errorf("base backup stream: %s: got %d bytes, header says %d", name, n, hdr.Size)
			}
			m.Files++
			m.Bytes += n
		default:
			return fmt.Errorf("base backup stream: %s: unexpected entry type %q", name, hdr.Typeflag)
		}
	}
}

// tarName cleans an entry name and refuses one that would leave the data
// directory.
func tarName(n string) (string, error) {
	c := path.Clean(n)
	if strings.Contains(n, "\x00") || path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("base backup stream: entry %q leaves the data directory", n)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// parseBackupLabel reads the start location and timeline from
// backup_label.
func parseBackupLabel(b []byte, m *PhysicalManifestData) error {
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch k {
		case "START WAL LOCATION":
			// 0/2000028 (file 000000010000000000000002)
			lsn, rest, _ := strings.Cut(v, " ")
			if _, err := ParseLSN(lsn); err != nil {
				return fmt.Errorf("backup_label: %w", err)
			}
			m.StartLSN = lsn
			rest = strings.TrimSuffix(strings.TrimPrefix(rest, "(file "), ")")
			if !IsSegmentName(rest) {
				return fmt.Errorf("backup_label: start WAL file %q is not a segment name", rest)
			}
			m.StartWALFile = rest
		case "START TIMELINE":
			tli, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || tli <= 0 {
				return fmt.Errorf("backup_label: timeline %q", v)
			}
			m.Timeline = tli
		}
	}
	if m.StartLSN == "" || m.Timeline == 0 {
		return errors.New("backup_label: no START WAL LOCATION or START TIMELINE")
	}
	return nil
}

// manifestStopLSN returns the end of the WAL range a backup manifest
// says the backup needs.
func manifestStopLSN(b []byte) (string, error) {
	var m struct {
		Version   int `json:"PostgreSQL-Backup-Manifest-Version"`
		WALRanges []struct {
			Timeline int    `json:"Timeline"`
			Start    string `json:"Start-LSN"`
			End      string `json:"End-LSN"`
		} `json:"WAL-Ranges"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("backup_manifest: %w", err)
	}
	if len(m.WALRanges) == 0 {
		return "", errors.New("backup_manifest: no WAL-Ranges")
	}
	end := m.WALRanges[len(m.WALRanges)-1].End
	if _, err := ParseLSN(end); err != nil {
		return "", fmt.Errorf("backup_manifest: %w", err)
	}
	return end, nil
}

// ParseLSN parses "16/B374D848".
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("%q is not an LSN (like 16/B374D848)", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%q is not an LSN (like 16/B374D848)", s)
	}
	return h<<32 | l, nil
}

// ReadPhysicalManifest reads and checks postgres/physical.json.
func ReadPhysicalManifest(ctx context.Context, t source.Tree) (*PhysicalManifestData, error) {
	b, err := source.ReadFile(ctx, t, PhysicalManifest)
	if err != nil {
		return nil, err
	}
	return ParsePhysicalManifest(b)
}

// ParsePhysicalManifest decodes postgres/physical.json.
func ParsePhysicalManifest(b []byte) (*PhysicalManifestData, error) {
	var m PhysicalManifestData
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", PhysicalManifest, err)
	}
	if m.Format != physicalFormat {
		return nil, fmt.Errorf("%s: unknown format %q (want %s)", PhysicalManifest, m.Format, physicalFormat)
	}
	if !IsSegmentName(m.StartWALFile) || m.SystemIdentifier == "" {
		return nil, fmt.Errorf("%s: bad start WAL file %q or system identifier %q", PhysicalManifest, m.StartWALFile, m.SystemIdentifier)
	}
	return &m, nil
}

// watchArchive watches the server's process of the base backup named
// appName: once it waits for WAL archiving (wait event
// BackupWaitWalArchive, PostgreSQL 13 and later) it reports the wait to
// report, and after timeout ends that process and cancels the backup with
// an *ArchiveTimeoutError. It returns when ctx ends, or quietly when it
// cannot watch (the backup then behaves as without it).
func (c *Client) watchArchive(ctx context.Context, appName string, timeout time.Duration, report func(ArchiveWait), cancel context.CancelCauseFunc) {
	conn, err := c.Connect(ctx, "")
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	tick := time.NewTicker(archivePoll)
	defer tick.Stop()
	var since, reported time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if since.IsZero() {
			var waiting bool
			err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
				WHERE application_name = $1 AND wait_event = 'BackupWaitWalArchive')`, appName).Scan(&waiting)
			if err != nil || !waiting {
				continue
			}
			since = time.Now()
		}
		w := ArchiveWait{Waited: time.Since(since), Timeout: timeout}
		w.Archiver, err = archiverStatus(ctx, conn)
		if err != nil {
			continue
		}
		if w.Waited >= timeout {
			if report != nil && reported.IsZero() {
				report(w) // however late this watcher ran, the wait is told
			}
			// The cause is set first: terminating the server's backend
			// ends pg_basebackup with an error of its own, and the backup
			// must report the timeout, not that error.
			cancel(&ArchiveTimeoutError{Timeout: timeout, Archiver: w.Archiver})
			// The server would go on waiting for a client that is gone.
			tctx, done := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_, _ = conn.Exec(tctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", appName)
			done()
			return
		}
		if report != nil && (reported.IsZero() || time.Since(reported) >= ArchiveWaitReport) {
			report(w)
			reported = time.Now()
		}
	}
}

// archiverStatus reads pg_stat_archiver.
func archiverStatus(ctx context.Context, conn *pgx.Conn) (ArchiverStatus, error) {
	var s ArchiverStatus
	var archived, failed *time.Time
	err := conn.QueryRow(ctx, `SELECT archived_count, failed_count, coalesce(last_archived_wal, ''), last_archived_time,
		coalesce(last_failed_wal, ''), last_failed_time FROM pg_stat_archiver`).Scan(
		&s.ArchivedCount, &s.FailedCount, &s.LastArchivedWAL, &archived, &s.LastFailedWAL, &failed)
	if err != nil {
		return s, fmt.Errorf("query pg_stat_archiver: %w", err)
	}
	if archived != nil {
		s.LastArchivedTime = *archived
	}
	if failed != nil {
		s.LastFailedTime = *failed
	}
	return s, nil
}
