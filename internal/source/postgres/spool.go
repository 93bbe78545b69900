package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bunkerbackup/bunker/internal/source"
)

// A WAL spool is a local directory where archive_command (wal-push
// --spool) leaves WAL files for a long-running pusher (wal-spool) that
// holds the repository open and archives several files per snapshot.
// Its layout:
//
//	SYSID-WALNAME        a spooled file, complete and durable (written to
//	                     a temporary file, fsynced, renamed, directory
//	                     fsynced), e.g. 7312…-000000010000000000000003
//	.tmp-SYSID-WALNAME   a file being spooled (or left by a killed push;
//	                     removed when older than SpoolTempMaxAge)
//	pusher.lock          flock'ed exclusively by whoever archives the
//	                     spool: the pusher, or wal-push when no pusher runs
//	pusher.json          the pusher's state (SpoolState), for pg info
//
// The system identifier is part of the name because a file's own header
// does not always tell (history files have none) and archive_command
// knows it only while it runs in the data directory. A spooled file is
// removed only after the snapshot holding it is committed, and only if it
// is still the file that was archived; a file archived twice is harmless.
const (
	spoolTempPrefix = ".tmp-"
	spoolLockName   = "pusher.lock"
	spoolStateName  = "pusher.json"
	// SpoolTempMaxAge is how old a temporary spool file must be before a
	// pusher removes it: spooling one file takes seconds, so an older one
	// was left by a killed wal-push.
	SpoolTempMaxAge = time.Hour
)

// SpoolName is the name of the WAL file walName of system sysid in a
// spool.
func SpoolName(sysid, walName string) string { return sysid + "-" + walName }

// ParseSpoolName parses the name of a spooled file: the system
// identifier (a decimal number without leading zeros) and the WAL file
// name.
func ParseSpoolName(name string) (sysid string, w WALName, err error) {
	id, walName, ok := strings.Cut(name, "-")
	if !ok {
		return "", WALName{}, fmt.Errorf("%q is not a spooled WAL file name (SYSID-WALNAME)", name)
	}
	n, perr := strconv.ParseUint(id, 10, 64)
	if perr != nil || n == 0 || strconv.FormatUint(n, 10) != id {
		return "", WALName{}, fmt.Errorf("%q is not a spooled WAL file name: %q is not a system identifier", name, id)
	}
	if w, err = ParseWALName(walName); err != nil {
		return "", WALName{}, fmt.Errorf("%q is not a spooled WAL file name: %w", name, err)
	}
	return id, w, nil
}

// WALSpool is a spool directory.
type WALSpool struct {
	Dir string
}

// OpenWALSpool opens the spool dir, creating it (0700) when missing. A
// directory others may write to is refused: whatever is put in it is
// archived as the server's WAL.
func OpenWALSpool(dir string) (*WALSpool, error) {
	if dir == "" {
		return nil, errors.New("WAL spool: no directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("WAL spool %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("WAL spool %s: %w", dir, err)
	}
	if err := checkSpoolDir(fi); err != nil {
		return nil, fmt.Errorf("WAL spool %s: %w", dir, err)
	}
	return &WALSpool{Dir: dir}, nil
}

// SpooledWAL is one file in a spool.
type SpooledWAL struct {
	Name    string // the spool file name (SpoolName)
	System  string // system identifier
	WAL     WALName
	Size    int64
	ModTime time.Time // when it was spooled
	info    fs.FileInfo
}

// Add copies the WAL files at paths of system sysid into the spool, each
// durably (temporary file, fsync, rename, fsync of the directory) and
// checked as wal-push checks them (a WAL file name; the size it had when
// opened is the size copied). When Add returns nil, every file survives a
// crash of this process or of the machine.
func (s *WALSpool) Add(paths []string, sysid string) ([]SpooledWAL, error) {
	var out []SpooledWAL
	for _, p := range paths {
		w, err := ParseWALName(filepath.Base(p))
		if err != nil {
			return nil, err
		}
		sw, err := s.add(p, sysid, w)
		if err != nil {
			return nil, err
		}
		out = append(out, sw)
	}
	if err := syncDir(s.Dir); err != nil {
		return nil, fmt.Errorf("WAL spool %s: %w", s.Dir, err)
	}
	return out, nil
}

func (s *WALSpool) add(p, sysid string, w WALName) (SpooledWAL, error) {
	in, err := os.Open(p)
	if err != nil {
		return SpooledWAL{}, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return SpooledWAL{}, err
	}
	name := SpoolName(sysid, w.Name)
	// The temporary name is fixed per file: archive_command runs one file
	// at a time per server, and a retry after a killed push truncates
	// what the killed one left.
	tmp := filepath.Join(s.Dir, spoolTempPrefix+name)
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return SpooledWAL{}, fmt.Errorf("WAL spool: %w", err)
	}
	n, err := io.Copy(out, in)
	if err == nil && n != fi.Size() {
		err = fmt.Errorf("%s: read %d bytes, expected %d (file changed while spooled)", p, n, fi.Size())
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	dest := filepath.Join(s.Dir, name)
	if err == nil {
		err = os.Rename(tmp, dest)
	}
	if err != nil {
		os.Remove(tmp)
		return SpooledWAL{}, fmt.Errorf("spool %s into %s: %w", p, s.Dir, err)
	}
	sfi, err := os.Lstat(dest)
	if err != nil {
		return SpooledWAL{}, fmt.Errorf("WAL spool: %w", err)
	}
	return SpooledWAL{Name: name, System: sysid, WAL: w, Size: n, ModTime: sfi.ModTime(), info: sfi}, nil
}

// syncDir makes the directory entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems (and Windows) cannot sync a directory; the
	// rename is then as durable as they make it.
	if errors.Is(err, os.ErrInvalid) || errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return err
}

// List returns the complete spooled files, by system and WAL name
// (oldest first), and how many temporary files there are. Other names
// are ignored.
func (s *WALSpool) List() (files []SpooledWAL, temps int, err error) {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, 0, fmt.Errorf("WAL spool: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, spoolTempPrefix) {
			temps++
			continue
		}
		sysid, w, perr := ParseSpoolName(name)
		if perr != nil || !e.Type().IsRegular() {
			continue
		}
		fi, ierr := e.Info()
		if ierr != nil {
			continue // removed meanwhile: archived by someone else
		}
		files = append(files, SpooledWAL{Name: name, System: sysid, WAL: w, Size: fi.Size(), ModTime: fi.ModTime(), info: fi})
	}
	slices.SortFunc(files, func(a, b SpooledWAL) int {
		if c := strings.Compare(a.System, b.System); c != 0 {
			return c
		}
		return strings.Compare(a.WAL.Name, b.WAL.Name)
	})
	return files, temps, nil
}

// RemoveStaleTemps removes temporary files older than SpoolTempMaxAge
// (left by killed pushes) and returns how many it removed.
func (s *WALSpool) RemoveStaleTemps(now time.Time) (int, error) {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return 0, fmt.Errorf("WAL spool: %w", err)
	}
	n := 0
	var errs []error
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), spoolTempPrefix) {
			continue
		}
		fi, err := e.Info()
		if err != nil || now.Sub(fi.ModTime()) < SpoolTempMaxAge {
			continue
		}
		if err := os.Remove(filepath.Join(s.Dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// SpoolBatch is spooled files of one system opened for archiving.
type SpoolBatch struct {
	System string
	Files  []SpooledWAL
	open   []*os.File
}

// OpenBatch opens spooled files of system sysid for archiving. A file
// that is gone was archived and removed by another pusher since it was
// listed: it is left out. The batch may be empty.
func (s *WALSpool) OpenBatch(files []SpooledWAL) (*SpoolBatch, error) {
	b := &SpoolBatch{}
	for _, f := range files {
		if b.System == "" {
			b.System = f.System
		}
		if f.System != b.System {
			b.Close()
			return nil, fmt.Errorf("WAL spool batch mixes systems %s and %s", b.System, f.System)
		}
		fh, err := openSpooled(filepath.Join(s.Dir, f.Name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("WAL spool: %w", err)
		}
		fi, err := fh.Stat()
		if err != nil {
			fh.Close()
			b.Close()
			return nil, fmt.Errorf("WAL spool: %w", err)
		}
		// The file opened is the one archived and, later, removed.
		f.Size, f.ModTime, f.info = fi.Size(), fi.ModTime(), fi
		b.Files = append(b.Files, f)
		b.open = append(b.open, fh)
	}
	return b, nil
}

// Close closes the batch's files.
func (b *SpoolBatch) Close() {
	for _, f := range b.open {
		f.Close()
	}
	b.open = nil
}

// Archive stores the batch's files under WALDir of sink, by their WAL
// names, and returns the archive snapshot's metadata (as ArchiveWAL).
func (b *SpoolBatch) Archive(ctx context.Context, sink source.Sink) (Metadata, error) {
	if len(b.Files) == 0 {
		return Metadata{}, errors.New("no WAL file to archive")
	}
	names := make([]string, len(b.Files))
	for i, f := range b.Files {
		n, err := sink.WriteFile(ctx, WALDir+"/"+f.WAL.Name, b.open[i], &source.Meta{Mode: 0o600, ModTime: f.ModTime})
		if err != nil {
			return Metadata{}, fmt.Errorf("spooled %s: %w", f.Name, err)
		}
		if n != f.Size {
			return Metadata{}, fmt.Errorf("spooled %s: read %d bytes, expected %d (file changed while archived)", f.Name, n, f.Size)
		}
		names[i] = f.WAL.Name
	}
	first, last := slices.Min(names), slices.Max(names)
	w0, _ := ParseWALName(first)
	return Metadata{Type: TypeWAL, SystemIdentifier: b.System, Timeline: w0.Timeline,
		WALFirst: first, WALLast: last, WALFiles: names}, nil
}

// Remove removes the batch's files from the spool once the snapshot
// holding them is committed. A file replaced since it was opened (spooled
// again) stays: the next batch archives it again.
func (s *WALSpool) Remove(b *SpoolBatch) error {
	var errs []error
	for _, f := range b.Files {
		p := filepath.Join(s.Dir, f.Name)
		fi, err := os.Lstat(p)
		if err != nil || !os.SameFile(fi, f.info) || fi.Size() != f.Size || !fi.ModTime().Equal(f.ModTime) {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("WAL spool: %w", err))
		}
	}
	return errors.Join(errs...)
}

// SpoolState is what a pusher tells about itself in the spool
// (pusher.json), for pg info.
type SpoolState struct {
	PID      int       `json:"pid"`
	Hostname string    `json:"hostname,omitempty"`
	Started  time.Time `json:"started"`
	// LastPush is when the last batch was committed, with its size.
	LastPush      time.Time `json:"last_push,omitzero"`
	LastPushFiles int       `json:"last_push_files,omitempty"`
	LastSnapshot  string    `json:"last_snapshot,omitempty"`
	// Pushed counts the files archived since the pusher started.
	Pushed int64 `json:"pushed"`
	// LastError is the last failure, cleared by the next success.
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// maxSpoolStateSize bounds what ParseSpoolState reads.
const maxSpoolStateSize = 64 << 10

// Validate says what is wrong with a state read from a spool.
func (st *SpoolState) Validate() error {
	switch {
	case st.PID < 0:
		return fmt.Errorf("negative pid %d", st.PID)
	case st.Pushed < 0 || st.LastPushFiles < 0:
		return errors.New("negative counts")
	case !utf8.ValidString(st.Hostname) || !utf8.ValidString(st.LastError) || !utf8.ValidString(st.LastSnapshot):
		return errors.New("text is not UTF-8")
	case len(st.Hostname) > 255 || len(st.LastSnapshot) > 64:
		return errors.New("over-long hostname or snapshot ID")
	}
	return nil
}

// ParseSpoolState parses a pusher's state file.
func ParseSpoolState(b []byte) (SpoolState, error) {
	var st SpoolState
	if len(b) > maxSpoolStateSize {
		return st, fmt.Errorf("WAL spool state: %d bytes, more than %d", len(b), maxSpoolStateSize)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return SpoolState{}, fmt.Errorf("WAL spool state: %w", err)
	}
	if err := st.Validate(); err != nil {
		return SpoolState{}, fmt.Errorf("WAL spool state: %w", err)
	}
	return st, nil
}

// WriteState saves the pusher's state (a temporary file, then a rename;
// not fsynced: it is a report, and a lost update is harmless).
func (s *WALSpool) WriteState(st SpoolState) error {
	if len(st.LastError) > 4096 {
		st.LastError = st.LastError[:4096]
		for !utf8.ValidString(st.LastError) {
			st.LastError = st.LastError[:len(st.LastError)-1]
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.Dir, spoolTempPrefix+spoolStateName)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("WAL spool state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Dir, spoolStateName)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("WAL spool state: %w", err)
	}
	return nil
}

// SpoolStatus is a spool's state as pg info shows it.
type SpoolStatus struct {
	Dir   string
	Files int   // complete spooled files waiting to be archived
	Bytes int64 // their size
	// Systems are the system identifiers of the spooled files.
	Systems []string
	// Oldest is the first waiting WAL file by name, spooled at OldestTime.
	Oldest     string
	OldestTime time.Time
	// Temporary counts files being spooled or left by killed pushes.
	Temporary int
	// PusherRunning is true while someone holds the spool's lock: a
	// pusher, or wal-push archiving the spool itself.
	PusherRunning bool
	// Pusher is the last pusher's state; nil when none was recorded (or
	// it does not parse: StateError says why).
	Pusher     *SpoolState
	StateError string
}

// Status reads the spool's state without changing anything in it.
func (s *WALSpool) Status() (SpoolStatus, error) {
	st := SpoolStatus{Dir: s.Dir}
	files, temps, err := s.List()
	if err != nil {
		return st, err
	}
	st.Files, st.Temporary = len(files), temps
	for _, f := range files {
		st.Bytes += f.Size
		if !slices.Contains(st.Systems, f.System) {
			st.Systems = append(st.Systems, f.System)
		}
		if st.Oldest == "" || f.WAL.Name < st.Oldest {
			st.Oldest, st.OldestTime = f.WAL.Name, f.ModTime
		}
	}
	if st.PusherRunning, err = s.locked(); err != nil {
		return st, err
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, spoolStateName))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		st.StateError = err.Error()
	default:
		ps, err := ParseSpoolState(b)
		if err != nil {
			st.StateError = err.Error()
		} else {
			st.Pusher = &ps
		}
	}
	return st, nil
}

// Over reports whether the spool holds more than maxFiles files or
// maxBytes bytes (0: no bound of that kind).
func (st *SpoolStatus) Over(maxFiles int, maxBytes int64) bool {
	return maxFiles > 0 && st.Files > maxFiles || maxBytes > 0 && st.Bytes > maxBytes
}

// StatusOf is the status of the files of a listing (without the lock and
// the pusher's state).
func StatusOf(dir string, files []SpooledWAL) SpoolStatus {
	st := SpoolStatus{Dir: dir, Files: len(files)}
	for _, f := range files {
		st.Bytes += f.Size
	}
	return st
}
