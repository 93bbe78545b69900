package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/safefs"
	"github.com/bunkerbackup/bunker/internal/source"
)

// RecoveryTarget is where a point-in-time recovery from a base backup
// stops: at most one of Time, LSN, XID, Name and Latest.
type RecoveryTarget struct {
	Time   time.Time // recovery_target_time
	LSN    string    // recovery_target_lsn, e.g. 0/3000060
	XID    string    // recovery_target_xid
	Name   string    // recovery_target_name (pg_create_restore_point)
	Latest bool      // the end of the archived WAL
	// Exclusive stops just before the target instead of just after it.
	Exclusive bool
	// Action is recovery_target_action: promote, pause or shutdown.
	Action string
}

// Settings checks the target and returns its recovery settings for
// postgresql.auto.conf (without restore_command) and whether it names a
// target at all.
func (t RecoveryTarget) Settings() (settings []string, any bool, err error) {
	n := 0
	for _, set := range []bool{!t.Time.IsZero(), t.LSN != "", t.XID != "", t.Name != "", t.Latest} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, false, errors.New("give at most one of --target-time, --target-lsn, --target-xid, --target-name, --target-latest")
	}
	if !slices.Contains([]string{"promote", "pause", "shutdown"}, t.Action) {
		return nil, false, fmt.Errorf("--target-action %q: use promote, pause or shutdown", t.Action)
	}
	switch {
	case !t.Time.IsZero():
		settings = append(settings, "recovery_target_time = "+Quote(t.Time.UTC().Format("2006-01-02 15:04:05.999999+00")))
	case t.LSN != "":
		if _, err := ParseLSN(t.LSN); err != nil {
			return nil, false, fmt.Errorf("--target-lsn: %w", err)
		}
		settings = append(settings, "recovery_target_lsn = "+Quote(t.LSN))
	case t.XID != "":
		if _, err := strconv.ParseUint(t.XID, 10, 64); err != nil {
			return nil, false, fmt.Errorf("--target-xid %q is not a transaction ID", t.XID)
		}
		settings = append(settings, "recovery_target_xid = "+Quote(t.XID))
	case t.Name != "":
		settings = append(settings, "recovery_target_name = "+Quote(t.Name))
	}
	if n > 0 && !t.Latest {
		settings = append(settings, "recovery_target_action = "+Quote(t.Action), "recovery_target_inclusive = "+strconv.FormatBool(!t.Exclusive))
	}
	return settings, n > 0, nil
}

// ImmediateSettings are the recovery settings of a restore "as it was"
// of a base backup that left its WAL to the archive (wal_method none):
// it must replay the archived WAL up to its consistent point.
func ImmediateSettings(action string) []string {
	return []string{"recovery_target = 'immediate'", "recovery_target_action = " + Quote(action)}
}

// RestoreCommand is the restore_command setting that copies WAL from
// walDir, quiet about the files recovery probes for that do not exist
// (later timelines' history files, the end of the archive).
func RestoreCommand(walDir string) string {
	src := shellQuotePath(walDir + "/%f")
	return "restore_command = " + Quote(fmt.Sprintf("test -f %s && cp %s %%p", src, src))
}

// Quote quotes a value for postgresql.conf.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// shellQuotePath quotes a path for restore_command (run by /bin/sh),
// leaving %f and %p for PostgreSQL to substitute.
func shellQuotePath(p string) string { return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'" }

// CheckDataDir returns the absolute path of pgdata, which a physical
// restore creates: it must be absent or empty.
func CheckDataDir(pgdata string) (string, error) {
	abs, err := filepath.Abs(pgdata)
	if err != nil {
		return "", err
	}
	if ents, err := os.ReadDir(abs); err == nil && len(ents) > 0 {
		return "", fmt.Errorf("--pgdata %s is not empty: restore into a new or empty directory", abs)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("--pgdata: %w", err)
	}
	return abs, nil
}

// CheckDeltaDir checks pgdata for a delta restore and returns it
// absolute: absent, empty, or a PostgreSQL data directory (PG_VERSION)
// of a stopped server (no postmaster.pid). A delta restore deletes what
// the backup lacks, so it refuses any other directory.
func CheckDeltaDir(pgdata string) (string, error) {
	abs, err := filepath.Abs(pgdata)
	if err != nil {
		return "", err
	}
	ents, err := os.ReadDir(abs)
	switch {
	case errors.Is(err, os.ErrNotExist) || err == nil && len(ents) == 0:
		return abs, nil
	case err != nil:
		return "", fmt.Errorf("--pgdata: %w", err)
	}
	if _, err := os.Lstat(filepath.Join(abs, "postmaster.pid")); err == nil {
		return "", fmt.Errorf("--pgdata %s has a postmaster.pid: stop the server first (a delta restore rewrites its files)", abs)
	}
	if fi, err := os.Lstat(filepath.Join(abs, "PG_VERSION")); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("--pgdata %s is not a PostgreSQL data directory (no PG_VERSION): a delta restore deletes what the backup lacks, so it only goes into an empty directory or a data directory", abs)
	}
	return abs, nil
}

// clearWALFiles removes the files in dir named like WAL (segments,
// partial segments, history and backup history files), which a delta
// restore's earlier recovery left there; anything else stays.
func clearWALFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if _, perr := ParseWALName(e.Name()); perr != nil || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// VerifyArgs are pg_verifybackup's arguments for a restored data
// directory: a backup that left its WAL to the archive is checked
// against the fetched WAL in walDir, or without WAL when none was
// fetched.
func VerifyArgs(pgdata, walMethod, walDir string) []string {
	args := []string{"--quiet", pgdata}
	if walMethod == "none" {
		if walDir != "" {
			args = append(args, "--wal-directory="+walDir)
		} else {
			args = append(args, "--no-parse-wal")
		}
	}
	return args
}

// RestoreOwner gives a restored data directory its owner and returns it
// (-1, -1 for none): the local user owner when given (every file is
// chowned to it), else the owner of the restored PG_VERSION, which the
// data directory itself gets too when this process runs as root.
func RestoreOwner(pgdata, owner string) (uid, gid int, err error) {
	if owner != "" {
		if uid, gid, err = source.LookupUser(owner); err != nil {
			return -1, -1, fmt.Errorf("--owner: %w", err)
		}
		if err := chownTree(pgdata, uid, gid); err != nil {
			return -1, -1, fmt.Errorf("--owner: %w", err)
		}
		return uid, gid, nil
	}
	fi, err := restoredOwner(pgdata)
	if err != nil || fi == nil {
		return -1, -1, err
	}
	uid, gid = fileOwner(fi)
	if uid >= 0 && os.Geteuid() == 0 {
		// The directory itself was made here, not restored.
		if err := os.Chown(pgdata, uid, gid); err != nil {
			return -1, -1, err
		}
	}
	return uid, gid, nil
}

// restoredOwner returns the metadata of pgdata/PG_VERSION, whose owner
// the restored files should get, or nil when there is none. The base
// backup is untrusted: a PG_VERSION that is a link or not a regular file
// is refused rather than followed (its target's owner is not the
// cluster's).
func restoredOwner(pgdata string) (os.FileInfo, error) {
	root, err := safefs.Open(pgdata)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.OpenFile("PG_VERSION", os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the restored base backup is not a plain data directory: %w", err)
	}
	defer f.Close()
	return f.Stat()
}

func chownTree(root string, uid, gid int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// Recovery files written into a restored data directory.
const (
	AutoConf       = "postgresql.auto.conf"
	RecoverySignal = "recovery.signal"
)

// WriteRecoveryConf appends the recovery settings to postgresql.auto.conf
// and creates recovery.signal, both owned by uid:gid when uid >= 0. The
// data directory comes from a snapshot, untrusted input: neither file is
// written through a symbolic link or when it is anything but a regular
// file — the restore stops with an error naming it instead, before
// either is written, and the user can look at what the backup holds
// there. (Replacing it would hide the planted entry, and PostgreSQL
// itself never makes either a link.)
func WriteRecoveryConf(pgdata string, settings []string, uid, gid int) error {
	root, err := safefs.Open(pgdata)
	if err != nil {
		return err
	}
	defer root.Close()
	// Check both before writing either (opening for reading checks the
	// type without changing anything).
	for _, name := range []string{AutoConf, RecoverySignal} {
		f, err := root.OpenFile(name, os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write the recovery settings: %w (as restored from the base backup; refusing to write through it)", err)
		}
		f.Close()
	}
	write := func(name string, flag int, data string) error {
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|flag, 0o600)
		if err != nil {
			return fmt.Errorf("write the recovery settings: %w", err)
		}
		_, err = f.WriteString(data)
		if err == nil && uid >= 0 {
			err = f.Chown(uid, gid)
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", root.Join(name), err)
		}
		return nil
	}
	conf := fmt.Sprintf("# Recovery settings written by bunker restore postgres on %s\n%s\n", time.Now().UTC().Format(time.RFC3339), strings.Join(settings, "\n"))
	if err := write(AutoConf, os.O_APPEND, conf); err != nil {
		return err
	}
	return write(RecoverySignal, os.O_TRUNC, "")
}

// PhysicalRestore restores a base backup into a new data directory and,
// with a recovery target (or a backup that left its WAL to the archive),
// fetches the archived WAL and writes the recovery settings, so that
// starting the server replays WAL and stops at the target.
type PhysicalRestore struct {
	PGData string // absolute, absent or empty (CheckDataDir); with Delta a data directory (CheckDeltaDir)
	// Delta restores into an existing data directory: RestoreBase keeps
	// what is unchanged and deletes what the backup lacks, and the WAL
	// files an earlier recovery left in the default WAL directory
	// (PGData + ".wal", which only restores write) are removed first; a
	// WALDir the caller names is never emptied.
	Delta    bool
	WALDir   string // where recovery reads the archived WAL; "" means PGData + ".wal"
	Owner    string // local user to own the files; "" keeps the backup's owner
	Target   RecoveryTarget
	NoVerify bool
	Manifest *PhysicalManifestData // the backup's postgres/physical.json
	// RestoreBase lays the backup's pgdata/ down in dir (which exists).
	RestoreBase func(ctx context.Context, dir string) error
	// Archive returns the repository's snapshots and their trees, where
	// the WAL archive is.
	Archive func(ctx context.Context) ([]source.SnapshotInfo, Trees, error)
	// Verify runs pg_verifybackup with args.
	Verify func(ctx context.Context, args []string) error
}

// PhysicalRestoreResult is what a physical restore did.
type PhysicalRestoreResult struct {
	Replay   bool     // recovery is configured: starting the server replays WAL
	Recovery []string // the recovery target settings
	WALDir   string   // absolute, when Replay
	WALFiles int      // fetched into WALDir
	Verified bool     // pg_verifybackup accepted the restored directory
	// A delta restore's files kept as they were, rewritten, and deleted
	// (the caller's RestoreBase counts them).
	FilesKept, FilesWritten, Deleted int64
}

// Restore performs the restore. Target must have been checked
// (Settings) by the caller before anything was read.
func (o *PhysicalRestore) Restore(ctx context.Context) (*PhysicalRestoreResult, error) {
	recovery, replay, err := o.Target.Settings()
	if err != nil {
		return nil, err
	}
	m := o.Manifest
	// With WAL left to the archive, even "restore as it was" needs it.
	if !replay && m.WALMethod == "none" {
		recovery, replay = ImmediateSettings(o.Target.Action), true
	}
	res := &PhysicalRestoreResult{Replay: replay, Recovery: recovery}
	if err := os.MkdirAll(o.PGData, 0o700); err != nil {
		return nil, err
	}
	if err := o.RestoreBase(ctx, o.PGData); err != nil {
		return nil, fmt.Errorf("restore base backup: %w", err)
	}
	if err := os.Chmod(o.PGData, 0o700); err != nil {
		return nil, err
	}
	uid, gid, err := RestoreOwner(o.PGData, o.Owner)
	if err != nil {
		return nil, err
	}
	if replay {
		res.WALDir = o.WALDir
		if res.WALDir == "" {
			res.WALDir = o.PGData + ".wal"
		}
		if res.WALDir, err = filepath.Abs(res.WALDir); err != nil {
			return nil, err
		}
		if o.Delta && o.WALDir == "" {
			if err := clearWALFiles(res.WALDir); err != nil {
				return nil, fmt.Errorf("clear %s: %w", res.WALDir, err)
			}
		}
		all, trees, err := o.Archive(ctx)
		if err != nil {
			return nil, err
		}
		if res.WALFiles, err = FetchRecoveryWAL(ctx, all, trees, m, res.WALDir, uid, gid); err != nil {
			return nil, err
		}
	}
	if !o.NoVerify {
		if err := o.Verify(ctx, VerifyArgs(o.PGData, m.WALMethod, res.WALDir)); err != nil {
			return nil, fmt.Errorf("the restored base backup does not verify (--no-verify skips this): %w", err)
		}
		res.Verified = true
	}
	if replay {
		settings := append([]string{RestoreCommand(res.WALDir)}, recovery...)
		if err := WriteRecoveryConf(o.PGData, settings, uid, gid); err != nil {
			return nil, err
		}
	}
	return res, nil
}
