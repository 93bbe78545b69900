package state

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the layout version this package writes. Open refuses
// a file with a newer version.
const FormatVersion = 1

// MaxLog is how much of a run's log is kept: the last MaxLog bytes.
const MaxLog = 64 << 10

// Run results.
const (
	ResultRunning     = "running"
	ResultSuccess     = "success"
	ResultFailed      = "failed"
	ResultCancelled   = "cancelled"
	ResultInterrupted = "interrupted"
)

// Run kinds.
const (
	KindBackup    = "backup"
	KindCopy      = "copy"
	KindRetention = "retention"
	KindDrill     = "drill"
	// KindCheck and KindPrune are a plan repository's scheduled check
	// and prune; their Job is the repository's name.
	KindCheck = "check"
	KindPrune = "prune"
)

// Run triggers.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
	TriggerCatchUp  = "catch-up"
	TriggerRetry    = "retry"
	TriggerAPI      = "api"
)

// Limits on names used as keys.
const (
	maxIDLen  = 256
	maxKeyLen = 4096
)

var (
	// ErrNotFound is wrapped by Run when no run has the ID and by
	// FinishRun when the run was never started.
	ErrNotFound = errors.New("not found")
	// ErrInUse is wrapped by Open when another process (or another Store
	// in this one) holds the database.
	ErrInUse = errors.New("in use by another bunker daemon")
)

// Options configure a Store. The zero value is valid.
type Options struct {
	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
	// KeepRuns is how many finished runs of each job are kept; older
	// ones are pruned when a run of the job finishes. Running runs are
	// never pruned and do not count. Default 1000.
	KeepRuns int
	// LockTimeout is how long Open waits for another process to release
	// the file before failing with ErrInUse. Default 1s.
	LockTimeout time.Duration
}

// Validate reports options that make no sense.
func (o Options) Validate() error {
	if o.KeepRuns < 0 {
		return fmt.Errorf("state options: KeepRuns %d is negative", o.KeepRuns)
	}
	if o.LockTimeout < 0 {
		return fmt.Errorf("state options: LockTimeout %s is negative", o.LockTimeout)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.KeepRuns == 0 {
		o.KeepRuns = 1000
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = time.Second
	}
	return o
}

// Run is one run of a job or drill. The JSON form is for API consumers;
// the stored form is runRecord.
type Run struct {
	// ID is unique and sorts by start time; StartRun sets it when empty.
	ID   string `json:"id"`
	Job  string `json:"job"`  // job or drill name; the repository's for KindCheck and KindPrune
	Kind string `json:"kind"` // KindBackup, KindCopy, KindRetention, KindDrill, KindCheck, KindPrune
	// Trigger is TriggerSchedule, TriggerManual, TriggerCatchUp,
	// TriggerRetry or TriggerAPI.
	Trigger   string    `json:"trigger,omitempty"`
	Scheduled time.Time `json:"scheduled,omitzero"` // the slot it ran for; zero for manual runs
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished,omitzero"` // zero while running
	Result    string    `json:"result"`            // ResultRunning, ResultSuccess, …
	Error     string    `json:"error,omitempty"`
	// Reason says why a run was cancelled or interrupted ("daemon shut
	// down", "timeout 1h").
	Reason         string  `json:"reason,omitempty"`
	Attempt        int     `json:"attempt,omitempty"`
	Snapshot       string  `json:"snapshot,omitempty"` // snapshot ID made, if any
	Repository     string  `json:"repository,omitempty"`
	BytesRead      int64   `json:"bytes_read,omitempty"`
	BytesAdded     int64   `json:"bytes_added,omitempty"`
	RestoreSeconds float64 `json:"restore_seconds,omitempty"` // drills: measured restore time (RTO evidence)
	// Log is the run's log tail: StartRun and FinishRun keep its last
	// MaxLog bytes (cut at a character boundary).
	Log string `json:"log,omitempty"`
}

// runRecord is the stored form of a Run (runs/<id>), without the log
// (logs/<id>), so that scanning runs stays cheap. Its fields must match
// Run's one for one (the conversions below do not compile otherwise);
// its JSON names are the file format and never change.
type runRecord struct {
	ID             string    `json:"id"`
	Job            string    `json:"job"`
	Kind           string    `json:"kind,omitempty"`
	Trigger        string    `json:"trigger,omitempty"`
	Scheduled      time.Time `json:"scheduled,omitzero"`
	Started        time.Time `json:"started"`
	Finished       time.Time `json:"finished,omitzero"`
	Result         string    `json:"result"`
	Error          string    `json:"error,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	Attempt        int       `json:"attempt,omitempty"`
	Snapshot       string    `json:"snapshot,omitempty"`
	Repository     string    `json:"repository,omitempty"`
	BytesRead      int64     `json:"bytes_read,omitempty"`
	BytesAdded     int64     `json:"bytes_added,omitempty"`
	RestoreSeconds float64   `json:"restore_seconds,omitempty"`
	Log            string    `json:"-"`
}

// SizePoint is a repository's size at a time.
type SizePoint struct {
	Time  time.Time `json:"time"`
	Bytes int64     `json:"bytes"`
}

// Store is the daemon's state database. Its methods are safe for
// concurrent use; write methods return after the change is durable.
type Store struct {
	db    *bbolt.DB
	path  string
	clock func() time.Time
	keep  int
}

var (
	bucketMeta    = []byte("meta")
	bucketRuns    = []byte("runs")
	bucketLogs    = []byte("logs")
	bucketOrder   = []byte("order")
	bucketJobs    = []byte("jobs")
	bucketRunning = []byte("running")
	bucketSlots   = []byte("slots")
	bucketSizes   = []byte("sizes")
	bucketAlerts  = []byte("alerts")

	allBuckets = [][]byte{bucketMeta, bucketRuns, bucketLogs, bucketOrder, bucketJobs,
		bucketRunning, bucketSlots, bucketSizes, bucketAlerts}

	keyVersion = []byte("version")
	// present is the value of index entries (bbolt does not promise
	// that Get tells an empty value from a missing one).
	present = []byte{1}
)

// Open opens the store at path, creating the file (0600) and its
// directory (0700) if needed. It fails with ErrInUse when another
// process holds the file for longer than opts.LockTimeout, and refuses a
// file of a newer format version or one that is not a state DB.
func Open(path string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state DB %s: %w", path, err)
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)

	db, err := openBolt(path, opts.LockTimeout)
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("state DB %s is %w (still locked after %s)", path, ErrInUse, opts.LockTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("state DB %s: not a valid database file (damaged, or not a state DB): %w", path, err)
	case errors.Is(err, errDamaged):
		return nil, fmt.Errorf("state DB %s: open: %w (move the file aside to start with an empty state)", path, err)
	case err != nil:
		return nil, fmt.Errorf("state DB %s: open: %w", path, err)
	}
	s := &Store{db: db, path: path, clock: opts.Clock, keep: opts.KeepRuns}
	if err := s.update("check format", s.initLayout); err != nil {
		_ = db.Close()
		if errors.Is(err, errDamaged) {
			err = fmt.Errorf("%w (move the file aside to start with an empty state)", err)
		}
		return nil, err
	}
	if created {
		// Make the new file's directory entry durable too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("state DB %s: %w", path, err)
		}
	}
	return s, nil
}

// errDamaged is what a bbolt panic (on a damaged file) becomes.
var errDamaged = errors.New("damaged database file")

// openBolt is bbolt.Open turning a panic (or a memory fault) into an error. bbolt holds the
// file lock when it panics and would never release it, so it is released
// here: the next Open then says what is wrong, not "in use".
func openBolt(path string, timeout time.Duration) (db *bbolt.DB, err error) {
	// bbolt reads the file through mmap: a damaged file can make it read
	// past the mapping, a fault that kills the process unless it panics.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var file *os.File
	defer func() {
		if p := recover(); p != nil {
			if file != nil {
				unlock(file)
				_ = file.Close()
			}
			db, err = nil, fmt.Errorf("%w: %v", errDamaged, p)
		}
	}()
	return bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      timeout,
		FreelistType: bbolt.FreelistArrayType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// initLayout creates the buckets of a new file and checks the format
// version of an existing one.
func (s *Store) initLayout(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		var foreign []byte
		_ = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			foreign = name
			return errStop
		})
		if foreign != nil {
			return fmt.Errorf("not a bunker state DB (it has bucket %q but no %q)", foreign, bucketMeta)
		}
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		v, _ := json.Marshal(FormatVersion)
		return tx.Bucket(bucketMeta).Put(keyVersion, v)
	}
	if _, err := decodeVersion(meta.Get(keyVersion)); err != nil {
		return err
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	return nil
}

var errStop = errors.New("stop")

// decodeVersion checks meta/version.
func decodeVersion(data []byte) (int, error) {
	if data == nil {
		return 0, fmt.Errorf("corrupt state: missing meta/version")
	}
	var v int
	if err := json.Unmarshal(data, &v); err != nil {
		return 0, fmt.Errorf("corrupt value at meta/version: %w", err)
	}
	if v < 1 {
		return 0, fmt.Errorf("corrupt value at meta/version: version %d", v)
	}
	if v > FormatVersion {
		return 0, fmt.Errorf("format version %d is newer than this bunker understands (%d): upgrade bunker", v, FormatVersion)
	}
	return v, nil
}

// Close releases the file. Calling it again is harmless.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("state DB %s: close: %w", s.path, err)
	}
	return nil
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

// update runs fn in a durable write transaction; op names the operation
// in errors. A panic (bbolt on a damaged file) becomes an error after
// bbolt rolled the transaction back.
func (s *Store) update(op string, fn func(*bbolt.Tx) error) (err error) {
	defer s.recoverTo(op, &err)
	if err := s.db.Update(fn); err != nil {
		return fmt.Errorf("state DB %s: %s: %w", s.path, op, err)
	}
	return nil
}

// view runs fn in a read transaction, like update.
func (s *Store) view(op string, fn func(*bbolt.Tx) error) (err error) {
	defer s.recoverTo(op, &err)
	if err := s.db.View(fn); err != nil {
		return fmt.Errorf("state DB %s: %s: %w", s.path, op, err)
	}
	return nil
}

func (s *Store) recoverTo(op string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("state DB %s: %s: %w: %v", s.path, op, errDamaged, p)
	}
}

// bucket returns a top-level bucket, which initLayout made sure exists.
// buckets fetches several buckets, in order.
func buckets(tx *bbolt.Tx, names ...[]byte) ([]*bbolt.Bucket, error) {
	out := make([]*bbolt.Bucket, len(names))
	for i, n := range names {
		b, err := bucket(tx, n)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func bucket(tx *bbolt.Tx, name []byte) (*bbolt.Bucket, error) {
	b := tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("corrupt state: bucket %s is missing", name)
	}
	return b, nil
}

// --- runs ---------------------------------------------------------------

// StartRun records r as running. It sets r.ID when empty (time-based and
// random, sorting by start), r.Started when zero, r.Result to
// ResultRunning, clears r.Finished and trims r.Log; it fails if a run
// with that ID exists. The run is durable when StartRun returns.
func (s *Store) StartRun(r *Run) error {
	if r == nil {
		return fmt.Errorf("state DB %s: start run: nil run", s.path)
	}
	if err := checkName("job", r.Job); err != nil {
		return fmt.Errorf("state DB %s: start run: %w", s.path, err)
	}
	if r.ID != "" {
		if err := checkID(r.ID); err != nil {
			return fmt.Errorf("state DB %s: start run: %w", s.path, err)
		}
	}
	n := *r
	if n.Started.IsZero() {
		n.Started = s.clock()
	}
	n.Started = n.Started.Round(0)
	n.Scheduled = n.Scheduled.Round(0)
	n.Finished = time.Time{}
	n.Result = ResultRunning
	n.Log = TrimLog(n.Log)
	op := "start run of job " + n.Job
	err := s.update(op, func(tx *bbolt.Tx) error {
		runs, err := bucket(tx, bucketRuns)
		if err != nil {
			return err
		}
		if n.ID == "" {
			for {
				n.ID = newID(n.Started)
				if runs.Get([]byte(n.ID)) == nil {
					break
				}
			}
		} else if runs.Get([]byte(n.ID)) != nil {
			return fmt.Errorf("run %s already exists", n.ID)
		}
		return putRun(tx, nil, &n)
	})
	if err != nil {
		return err
	}
	*r = n
	return nil
}

// Record adds a run that has finished (a manual run made outside the
// daemon): StartRun then FinishRun. r.Result must be a final result.
func (s *Store) Record(r *Run) error {
	final := *r
	switch final.Result {
	case ResultSuccess, ResultFailed, ResultCancelled, ResultInterrupted:
	default:
		return fmt.Errorf("state DB %s: record run of job %s: result %q is not a final result (success, failed, cancelled, interrupted)", s.path, r.Job, r.Result)
	}
	if final.Finished.Before(final.Started) {
		return fmt.Errorf("state DB %s: record run of job %s: finished before it started", s.path, r.Job)
	}
	if err := s.StartRun(r); err != nil {
		return err
	}
	final.ID, final.Started = r.ID, r.Started
	if err := s.FinishRun(&final); err != nil {
		return err
	}
	*r = final
	return nil
}

// FinishRun records the final state of a run StartRun recorded: r.Result
// must be a final result (not running). It sets r.Finished when zero and
// trims r.Log, then prunes the job's oldest runs beyond KeepRuns. The
// run is durable when FinishRun returns.
func (s *Store) FinishRun(r *Run) error {
	if r == nil {
		return fmt.Errorf("state DB %s: finish run: nil run", s.path)
	}
	op := "finish run " + r.ID
	switch r.Result {
	case ResultSuccess, ResultFailed, ResultCancelled, ResultInterrupted:
	default:
		return fmt.Errorf("state DB %s: %s: result %q is not a final result (success, failed, cancelled, interrupted)", s.path, op, r.Result)
	}
	if err := checkID(r.ID); err != nil {
		return fmt.Errorf("state DB %s: %s: %w", s.path, op, err)
	}
	if err := checkName("job", r.Job); err != nil {
		return fmt.Errorf("state DB %s: %s: %w", s.path, op, err)
	}
	n := *r
	if n.Finished.IsZero() {
		n.Finished = s.clock()
	}
	n.Started = n.Started.Round(0)
	n.Scheduled = n.Scheduled.Round(0)
	n.Finished = n.Finished.Round(0)
	n.Log = TrimLog(n.Log)
	err := s.update(op, func(tx *bbolt.Tx) error {
		old, err := getRecord(tx, n.ID)
		if err != nil {
			return err
		}
		if old == nil {
			return fmt.Errorf("run %s: %w (FinishRun needs StartRun first)", n.ID, ErrNotFound)
		}
		if err := putRun(tx, old, &n); err != nil {
			return err
		}
		if err := s.prune(tx, n.Job); err != nil {
			return err
		}
		if old.Job != n.Job {
			return s.prune(tx, old.Job)
		}
		return nil
	})
	if err != nil {
		return err
	}
	*r = n
	return nil
}

// Run returns the run with the ID, or an error wrapping ErrNotFound.
func (s *Store) Run(id string) (*Run, error) {
	var r *Run
	err := s.view("read run "+id, func(tx *bbolt.Tx) error {
		rec, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("run %s: %w", id, ErrNotFound)
		}
		r, err = withLog(tx, rec)
		return err
	})
	return r, err
}

// Runs returns up to limit runs of job (all jobs when job is ""), newest
// start first; limit <= 0 means all.
func (s *Store) Runs(job string, limit int) ([]*Run, error) {
	out := []*Run{}
	err := s.view("list runs"+ofJob(job), func(tx *bbolt.Tx) error {
		return scanRuns(tx, job, func(rec *runRecord) (bool, error) {
			r, err := withLog(tx, rec)
			if err != nil {
				return false, err
			}
			out = append(out, r)
			return limit > 0 && len(out) >= limit, nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LastRun returns the newest run of job (any job when "") and kind (any
// kind when ""), whatever its result, or nil, nil when there is none.
func (s *Store) LastRun(job, kind string) (*Run, error) {
	return s.last("last run"+ofJob(job), job, kind, "")
}

// LastSuccess is LastRun restricted to successful runs.
func (s *Store) LastSuccess(job, kind string) (*Run, error) {
	return s.last("last successful run"+ofJob(job), job, kind, ResultSuccess)
}

func (s *Store) last(op, job, kind, result string) (*Run, error) {
	var r *Run
	err := s.view(op, func(tx *bbolt.Tx) error {
		return scanRuns(tx, job, func(rec *runRecord) (bool, error) {
			if (kind != "" && rec.Kind != kind) || (result != "" && rec.Result != result) {
				return false, nil
			}
			var err error
			r, err = withLog(tx, rec)
			return true, err
		})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Recover marks every run still running (left by a crash or kill -9) as
// interrupted with reason and the current time as Finished, and returns
// them, oldest start first. The daemon calls it at start, before it runs
// anything.
func (s *Store) Recover(reason string) ([]*Run, error) {
	var out []*Run
	now := s.clock().Round(0)
	err := s.update("recover interrupted runs", func(tx *bbolt.Tx) error {
		out = nil
		running, err := bucket(tx, bucketRunning)
		if err != nil {
			return err
		}
		var ids [][]byte
		if err := running.ForEach(func(k, _ []byte) error {
			ids = append(ids, bytes.Clone(k))
			return nil
		}); err != nil {
			return err
		}
		jobs := map[string]bool{}
		for _, id := range ids {
			rec, err := getRecord(tx, string(id))
			if err != nil {
				return err
			}
			if rec == nil || rec.Result != ResultRunning {
				// A stale index entry: the run is gone or finished.
				if err := running.Delete(id); err != nil {
					return err
				}
				continue
			}
			n, err := withLog(tx, rec)
			if err != nil {
				return err
			}
			n.Result = ResultInterrupted
			n.Reason = reason
			if n.Finished.IsZero() {
				n.Finished = now
			}
			if err := putRun(tx, rec, n); err != nil {
				return err
			}
			jobs[n.Job] = true
			out = append(out, n)
		}
		for job := range jobs {
			if err := s.prune(tx, job); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *Run) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

func ofJob(job string) string {
	if job == "" {
		return ""
	}
	return " of job " + job
}

// putRun stores r (replacing old, nil for a new run) and keeps the
// indexes in step.
func putRun(tx *bbolt.Tx, old *runRecord, r *Run) error {
	rec := runRecord(*r)
	data, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("encode run %s: %w", r.ID, err)
	}
	id := []byte(r.ID)
	bs, err := buckets(tx, bucketRuns, bucketLogs, bucketOrder, bucketJobs, bucketRunning)
	if err != nil {
		return err
	}
	runs, logs, order, jobs, running := bs[0], bs[1], bs[2], bs[3], bs[4]
	if err := runs.Put(id, data); err != nil {
		return fmt.Errorf("put runs/%s: %w", r.ID, err)
	}
	if r.Log == "" {
		err = logs.Delete(id)
	} else {
		err = logs.Put(id, []byte(r.Log))
	}
	if err != nil {
		return fmt.Errorf("put logs/%s: %w", r.ID, err)
	}
	key := orderKey(r.Started, r.ID)
	if old != nil {
		oldKey := orderKey(old.Started, old.ID)
		if !bytes.Equal(oldKey, key) {
			if err := order.Delete(oldKey); err != nil {
				return err
			}
		}
		if jb := jobs.Bucket([]byte(old.Job)); jb != nil && (old.Job != r.Job || !bytes.Equal(oldKey, key)) {
			if err := jb.Delete(oldKey); err != nil {
				return err
			}
		}
	}
	if err := order.Put(key, present); err != nil {
		return fmt.Errorf("put order/%x: %w", key, err)
	}
	jb, err := jobs.CreateBucketIfNotExists([]byte(r.Job))
	if err != nil {
		return fmt.Errorf("bucket jobs/%s: %w", r.Job, err)
	}
	if err := jb.Put(key, present); err != nil {
		return fmt.Errorf("put jobs/%s/%x: %w", r.Job, key, err)
	}
	if r.Result == ResultRunning {
		err = running.Put(id, present)
	} else {
		err = running.Delete(id)
	}
	if err != nil {
		return fmt.Errorf("index running/%s: %w", r.ID, err)
	}
	return nil
}

// prune deletes the job's finished runs beyond the newest s.keep.
func (s *Store) prune(tx *bbolt.Tx, job string) error {
	jobs, err := bucket(tx, bucketJobs)
	if err != nil {
		return err
	}
	jb := jobs.Bucket([]byte(job))
	if jb == nil {
		return nil
	}
	running, err := bucket(tx, bucketRunning)
	if err != nil {
		return err
	}
	var drop [][]byte
	kept := 0
	c := jb.Cursor()
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		_, id, err := splitOrderKey(k)
		if err != nil {
			return fmt.Errorf("jobs/%s: %w", job, err)
		}
		if running.Get([]byte(id)) != nil {
			continue
		}
		if kept < s.keep {
			kept++
			continue
		}
		drop = append(drop, bytes.Clone(k))
	}
	if len(drop) == 0 {
		return nil
	}
	bs, err := buckets(tx, bucketRuns, bucketLogs, bucketOrder)
	if err != nil {
		return err
	}
	runs, logs, order := bs[0], bs[1], bs[2]
	for _, k := range drop {
		id := k[timeKeyLen:]
		if err := jb.Delete(k); err != nil {
			return fmt.Errorf("prune run %s of job %s: %w", id, job, err)
		}
		if err := order.Delete(k); err != nil {
			return fmt.Errorf("prune run %s of job %s: %w", id, job, err)
		}
		if err := runs.Delete(id); err != nil {
			return fmt.Errorf("prune run %s of job %s: %w", id, job, err)
		}
		if err := logs.Delete(id); err != nil {
			return fmt.Errorf("prune run %s of job %s: %w", id, job, err)
		}
	}
	return nil
}

// scanRuns calls fn with the runs of job (all when "") newest first
// until fn says stop or fails.
func scanRuns(tx *bbolt.Tx, job string, fn func(*runRecord) (stop bool, err error)) error {
	var idx *bbolt.Bucket
	where := string(bucketOrder)
	if job == "" {
		b, err := bucket(tx, bucketOrder)
		if err != nil {
			return err
		}
		idx = b
	} else {
		jobs, err := bucket(tx, bucketJobs)
		if err != nil {
			return err
		}
		idx = jobs.Bucket([]byte(job))
		if idx == nil {
			return nil
		}
		where = "jobs/" + job
	}
	c := idx.Cursor()
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		_, id, err := splitOrderKey(k)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		rec, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		if rec == nil {
			return fmt.Errorf("corrupt index %s/%x: run %s is missing", where, k, id)
		}
		if job != "" && rec.Job != job {
			return fmt.Errorf("corrupt index %s/%x: run %s belongs to job %s", where, k, id, rec.Job)
		}
		stop, err := fn(rec)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// getRecord reads runs/<id>: nil, nil when absent.
func getRecord(tx *bbolt.Tx, id string) (*runRecord, error) {
	runs, err := bucket(tx, bucketRuns)
	if err != nil {
		return nil, err
	}
	data := runs.Get([]byte(id))
	if data == nil {
		return nil, nil
	}
	return decodeRun(id, data)
}

// decodeRun decodes and checks the value at runs/<id>.
func decodeRun(id string, data []byte) (*runRecord, error) {
	var rec runRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("corrupt value at runs/%s: %w", id, err)
	}
	switch {
	case rec.ID != id:
		return nil, fmt.Errorf("corrupt value at runs/%s: it holds run %q", id, rec.ID)
	case rec.Job == "":
		return nil, fmt.Errorf("corrupt value at runs/%s: no job", id)
	case rec.Result == "":
		return nil, fmt.Errorf("corrupt value at runs/%s: no result", id)
	}
	return &rec, nil
}

// withLog makes a Run of rec with its log from logs/<id>.
func withLog(tx *bbolt.Tx, rec *runRecord) (*Run, error) {
	r := Run(*rec)
	logs, err := bucket(tx, bucketLogs)
	if err != nil {
		return nil, err
	}
	r.Log = TrimLog(string(logs.Get([]byte(r.ID))))
	return &r, nil
}

// TrimLog returns the last MaxLog bytes of log, starting at a character
// boundary.
func TrimLog(log string) string {
	if len(log) <= MaxLog {
		return log
	}
	log = log[len(log)-MaxLog:]
	for i := 0; i < utf8.UTFMax && i < len(log); i++ {
		if utf8.RuneStart(log[i]) {
			return log[i:]
		}
	}
	return log
}

// newID makes a run ID that sorts by start time: UTC to the millisecond
// and 32 random bits, e.g. 20260314T120000.123Z-3fa9c2b1.
func newID(started time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return started.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}

func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("empty run ID")
	case len(id) > maxIDLen:
		return fmt.Errorf("run ID of %d bytes is too long (max %d)", len(id), maxIDLen)
	}
	return nil
}

func checkName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty %s name", what)
	case len(name) > maxKeyLen:
		return fmt.Errorf("%s name of %d bytes is too long (max %d)", what, len(name), maxKeyLen)
	}
	return nil
}

// --- time keys ----------------------------------------------------------

const timeKeyLen = 12

// timeKey encodes t so that keys sort by time, for any time.
func timeKey(t time.Time) []byte {
	k := make([]byte, timeKeyLen)
	binary.BigEndian.PutUint64(k, uint64(t.Unix())^(1<<63))
	binary.BigEndian.PutUint32(k[8:], uint32(t.Nanosecond()))
	return k
}

// decodeTimeKey is the inverse of timeKey (in UTC).
func decodeTimeKey(k []byte) (time.Time, error) {
	if len(k) != timeKeyLen {
		return time.Time{}, fmt.Errorf("time key %x is %d bytes, not %d", k, len(k), timeKeyLen)
	}
	sec := int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
	nsec := binary.BigEndian.Uint32(k[8:])
	if nsec >= 1e9 {
		return time.Time{}, fmt.Errorf("time key %x: %d nanoseconds", k, nsec)
	}
	return time.Unix(sec, int64(nsec)).UTC(), nil
}

func orderKey(started time.Time, id string) []byte {
	return append(timeKey(started), id...)
}

func splitOrderKey(k []byte) (time.Time, string, error) {
	if len(k) <= timeKeyLen {
		return time.Time{}, "", fmt.Errorf("corrupt index key %x: too short", k)
	}
	t, err := decodeTimeKey(k[:timeKeyLen])
	if err != nil {
		return time.Time{}, "", fmt.Errorf("corrupt index key %x: %w", k, err)
	}
	return t, string(k[timeKeyLen:]), nil
}

// --- schedule slots -----------------------------------------------------

// LastSlot returns the last schedule slot recorded for job, or the zero
// time when there is none.
func (s *Store) LastSlot(job string) (time.Time, error) {
	var t time.Time
	err := s.view("read last slot of job "+job, func(tx *bbolt.Tx) error {
		var err error
		t, err = getSlot(tx, job)
		return err
	})
	return t, err
}

// SetLastSlot records t as job's last slot, unconditionally (it may move
// the slot back: the next ClaimSlot after t then succeeds).
func (s *Store) SetLastSlot(job string, t time.Time) error {
	if err := checkName("job", job); err != nil {
		return fmt.Errorf("state DB %s: set last slot: %w", s.path, err)
	}
	return s.update("set last slot of job "+job, func(tx *bbolt.Tx) error {
		return putSlot(tx, job, t)
	})
}

// ClaimSlot records t as job's last slot and returns true, unless t is
// not after the recorded slot (it already ran or is running): then it
// returns false and changes nothing. Check and record are one
// transaction, so of concurrent claims of one slot exactly one wins.
func (s *Store) ClaimSlot(job string, t time.Time) (bool, error) {
	if err := checkName("job", job); err != nil {
		return false, fmt.Errorf("state DB %s: claim slot: %w", s.path, err)
	}
	won := false
	err := s.update("claim slot of job "+job, func(tx *bbolt.Tx) error {
		won = false
		last, err := getSlot(tx, job)
		if err != nil {
			return err
		}
		if !t.After(last) {
			return nil
		}
		won = true
		return putSlot(tx, job, t)
	})
	return won && err == nil, err
}

func getSlot(tx *bbolt.Tx, job string) (time.Time, error) {
	slots, err := bucket(tx, bucketSlots)
	if err != nil {
		return time.Time{}, err
	}
	data := slots.Get([]byte(job))
	if data == nil {
		return time.Time{}, nil
	}
	return decodeSlot(job, data)
}

func decodeSlot(job string, data []byte) (time.Time, error) {
	var t time.Time
	if err := json.Unmarshal(data, &t); err != nil {
		return time.Time{}, fmt.Errorf("corrupt value at slots/%s: %w", job, err)
	}
	return t, nil
}

func putSlot(tx *bbolt.Tx, job string, t time.Time) error {
	slots, err := bucket(tx, bucketSlots)
	if err != nil {
		return err
	}
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode slot %s: %w", t, err)
	}
	return slots.Put([]byte(job), data)
}

// --- repository sizes ---------------------------------------------------

// RecordSize records repo's size at t (replacing a size recorded at the
// same instant).
func (s *Store) RecordSize(repo string, t time.Time, size int64) error {
	if err := checkName("repository", repo); err != nil {
		return fmt.Errorf("state DB %s: record size: %w", s.path, err)
	}
	if size < 0 {
		return fmt.Errorf("state DB %s: record size of %s: negative size %d", s.path, repo, size)
	}
	return s.update("record size of "+repo, func(tx *bbolt.Tx) error {
		sizes, err := bucket(tx, bucketSizes)
		if err != nil {
			return err
		}
		rb, err := sizes.CreateBucketIfNotExists([]byte(repo))
		if err != nil {
			return fmt.Errorf("bucket sizes/%s: %w", repo, err)
		}
		data, _ := json.Marshal(size)
		return rb.Put(timeKey(t), data)
	})
}

// Sizes returns repo's sizes recorded at or after since, oldest first,
// with times in UTC.
func (s *Store) Sizes(repo string, since time.Time) ([]SizePoint, error) {
	out := []SizePoint{}
	err := s.view("read sizes of "+repo, func(tx *bbolt.Tx) error {
		sizes, err := bucket(tx, bucketSizes)
		if err != nil {
			return err
		}
		rb := sizes.Bucket([]byte(repo))
		if rb == nil {
			return nil
		}
		c := rb.Cursor()
		for k, v := c.Seek(timeKey(since)); k != nil; k, v = c.Next() {
			p, err := decodeSize(repo, k, v)
			if err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func decodeSize(repo string, k, v []byte) (SizePoint, error) {
	t, err := decodeTimeKey(k)
	if err != nil {
		return SizePoint{}, fmt.Errorf("corrupt key in sizes/%s: %w", repo, err)
	}
	var n int64
	if err := json.Unmarshal(v, &n); err != nil {
		return SizePoint{}, fmt.Errorf("corrupt value at sizes/%s/%x: %w", repo, k, err)
	}
	if n < 0 {
		return SizePoint{}, fmt.Errorf("corrupt value at sizes/%s/%x: negative size %d", repo, k, n)
	}
	return SizePoint{Time: t, Bytes: n}, nil
}

// --- alerts -------------------------------------------------------------

type alertRecord struct {
	Since time.Time `json:"since"`
}

// SetAlert records whether the alert key is active at t and reports
// whether that changed: raising an active alert again or clearing an
// inactive one is no change, so a notifier sends once per incident. An
// alert stays active since the time it was raised.
func (s *Store) SetAlert(key string, active bool, t time.Time) (changed bool, err error) {
	if err := checkName("alert", key); err != nil {
		return false, fmt.Errorf("state DB %s: set alert: %w", s.path, err)
	}
	err = s.update("set alert "+key, func(tx *bbolt.Tx) error {
		changed = false
		alerts, err := bucket(tx, bucketAlerts)
		if err != nil {
			return err
		}
		old := alerts.Get([]byte(key))
		if old != nil {
			// Decode it even when clearing: a corrupt value is
			// reported, not silently dropped or kept.
			if _, err := decodeAlert(key, old); err != nil {
				return err
			}
		}
		switch {
		case active && old == nil:
			data, err := json.Marshal(alertRecord{Since: t.Round(0)})
			if err != nil {
				return fmt.Errorf("encode alert %s: %w", key, err)
			}
			changed = true
			return alerts.Put([]byte(key), data)
		case !active && old != nil:
			changed = true
			return alerts.Delete([]byte(key))
		}
		return nil
	})
	return changed && err == nil, err
}

// Alerts returns the active alerts and since when each is active.
func (s *Store) Alerts() (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := s.view("read alerts", func(tx *bbolt.Tx) error {
		alerts, err := bucket(tx, bucketAlerts)
		if err != nil {
			return err
		}
		return alerts.ForEach(func(k, v []byte) error {
			since, err := decodeAlert(string(k), v)
			if err != nil {
				return err
			}
			out[string(k)] = since
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func decodeAlert(key string, data []byte) (time.Time, error) {
	if data == nil {
		return time.Time{}, fmt.Errorf("corrupt value at alerts/%s: a bucket, not a value", key)
	}
	var a alertRecord
	if err := json.Unmarshal(data, &a); err != nil {
		return time.Time{}, fmt.Errorf("corrupt value at alerts/%s: %w", key, err)
	}
	return a.Since, nil
}
