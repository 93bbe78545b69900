package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// FileType is the kind of object, which is also the folder (or key prefix)
// that holds it.
type FileType string

// The object kinds of a repository.
const (
	ConfigFile   FileType = "config"    // the single encrypted repository config
	KeyFile      FileType = "keys"      // password-wrapped master keys
	PackFile     FileType = "packs"     // packs of encrypted blobs
	IndexFile    FileType = "index"     // blob -> pack location index files
	SnapshotFile FileType = "snapshots" // snapshot roots
	SessionFile  FileType = "sessions"  // in-progress writer markers
	MaintFile    FileType = "maint"     // maintenance lease, plans and markers
)

// AllTypes lists every FileType, in the order a full listing walks them.
var AllTypes = []FileType{ConfigFile, KeyFile, PackFile, IndexFile, SnapshotFile, SessionFile, MaintFile}

// Known reports whether t is one of AllTypes.
func (t FileType) Known() bool { return slices.Contains(AllTypes, t) }

// Handle names one object.
type Handle struct {
	Type FileType
	Name string // empty for ConfigFile
}

func (h Handle) String() string {
	if h.Name == "" {
		return string(h.Type)
	}
	return string(h.Type) + "/" + h.Name
}

// Valid reports whether the handle is well formed. Its errors are
// permanent (see IsPermanent).
func (h Handle) Valid() error {
	return Permanent(h.valid())
}

func (h Handle) valid() error {
	switch h.Type {
	case ConfigFile:
		if h.Name != "" {
			return fmt.Errorf("invalid handle %q: config has no name", h.String())
		}
		return nil
	case KeyFile, PackFile, IndexFile, SnapshotFile, SessionFile, MaintFile:
		if h.Name == "" {
			return fmt.Errorf("invalid handle %q: empty name", h.String())
		}
		for _, c := range h.Name {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') || h.Name[0] == '.' {
				return fmt.Errorf("invalid handle %q: name may hold only [a-z0-9._-]", h.String())
			}
		}
		return nil
	default:
		return fmt.Errorf("invalid handle %q: unknown type", h.String())
	}
}

// FileInfo describes a stored object. ModTime is the store's clock, not the
// writer's: the concurrency protocol relies on it.
type FileInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// SaveOptions modify a Save.
type SaveOptions struct {
	// RetainUntil, when non-zero, asks the store to refuse deletion and
	// overwrite of the object until that time (S3 Object Lock and the
	// like). Backends without Features.ObjectLock ignore it.
	RetainUntil time.Time
	// RetainMode is the lock mode that goes with RetainUntil; empty means
	// LockCompliance.
	RetainMode LockMode
	// IfNotExists makes Save fail with ErrExists when the object is
	// already there, atomically (conditional create).
	IfNotExists bool
	// Metadata marks a pack that holds repository metadata (trees), which
	// every listing and restore reads: stores keep it in the class or tier
	// of metadata, not in the colder one configured for data packs.
	Metadata bool
}

// LockMode is the kind of an object lock.
type LockMode string

// The object lock modes (S3 naming): under compliance nobody, not even the
// account owner, can delete or shorten the lock before it expires; under
// governance a specially permitted credential can.
const (
	LockCompliance LockMode = "compliance"
	LockGovernance LockMode = "governance"
)

// Features are the optional capabilities of a backend.
type Features struct {
	ConditionalCreate bool // SaveOptions.IfNotExists is atomic
	ObjectLock        bool // SaveOptions.RetainUntil is enforced
	AppendOnly        bool // Remove and overwrite are refused (ErrPermission)
}

// Sentinel errors. Backends wrap them (errors.Is) so callers can tell
// what happened without knowing which backend is in use.
var (
	// ErrNotExist: the object does not exist.
	ErrNotExist = errors.New("object does not exist")
	// ErrExists: a conditional create found the object already there.
	ErrExists = errors.New("object already exists")
	// ErrPermission: the store refused the operation for this credential
	// (append-only access, object lock). Retrying will not help.
	ErrPermission = errors.New("operation not permitted by the store")
	// ErrNoSpace: the store is full. Retrying will not help soon.
	ErrNoSpace = errors.New("no space left in the store")
	// ErrAuth: the store rejected the credentials (unknown key, bad
	// signature, expired token, failed login). Retrying will not help.
	ErrAuth = errors.New("the store rejected the credentials")
)

// permanentError marks an error that retrying will not cure.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying will not cure (a malformed
// request, an unsupported feature, a bad configuration). nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether retrying the operation that returned err
// cannot help: the sentinel errors above, errors marked Permanent, and
// cancellation.
func IsPermanent(err error) bool {
	var pe permanentError
	switch {
	case err == nil:
		return false
	case errors.As(err, &pe),
		errors.Is(err, ErrNotExist), errors.Is(err, ErrExists),
		errors.Is(err, ErrPermission), errors.Is(err, ErrNoSpace),
		errors.Is(err, ErrAuth),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return false
}

// Backend stores immutable named objects.
//
// Contract (checked by storagetest):
//   - Save is atomic: a reader sees the whole object or nothing, never a
//     prefix, also after a crash. When Save returns nil the object is
//     durable. Save must not retain data after it returns. Saving an
//     existing name replaces it (unless IfNotExists), but the engine only
//     ever does so with identical content.
//   - Load calls fn with a reader of length bytes from offset (length 0
//     means to the end). fn may be called more than once if the backend
//     retries; it must be idempotent. A read past the end is an error.
//   - Stat and Load of a missing object fail with an error wrapping
//     ErrNotExist.
//   - List calls fn for every object of the type, in no particular order.
//     An error from fn stops the listing and is returned.
//   - Remove of a missing object succeeds (removal is idempotent).
//   - Every method is safe for concurrent use.
//   - Read-after-write: an object is visible to Stat, Load and List once
//     Save has returned.
type Backend interface {
	Location() string
	Features() Features
	Save(ctx context.Context, h Handle, data []byte, opts SaveOptions) error
	Load(ctx context.Context, h Handle, length int, offset int64, fn func(rd io.Reader) error) error
	Stat(ctx context.Context, h Handle) (FileInfo, error)
	List(ctx context.Context, t FileType, fn func(FileInfo) error) error
	Remove(ctx context.Context, h Handle) error
	Close() error
}

// Retainer is the optional capability of extending an object's retention
// (object lock) after it was written.
type Retainer interface {
	// ExtendRetention sets the object's retain-until time to until (in
	// mode) unless it is already later. It fails wrapping ErrNotExist
	// when the object is gone.
	ExtendRetention(ctx context.Context, h Handle, mode LockMode, until time.Time) error
	// RetainedUntil returns until when the store refuses to delete the
	// object (its current version); zero when it is not locked.
	RetainedUntil(ctx context.Context, h Handle) (time.Time, error)
}

// Versioner is the optional capability of stores that keep every version
// of an object (versioned buckets, usually with Object Lock), which lets a
// repository be read, or rolled back, as it was at a moment.
type Versioner interface {
	// AsOf returns a read-only view of the store as it was at t: for each
	// object the newest version written at or before t, ignoring later
	// versions and delete markers. Its write methods fail with
	// ErrPermission.
	AsOf(ctx context.Context, t time.Time) (Backend, error)
	// RollBack makes the current state of the store equal its state at t:
	// an object whose current version differs from its version at t gets
	// that version back (as a new current version), an object that did
	// not exist at t is removed (a delete marker hides it). Older
	// versions are kept. It reports what it changed through report.
	RollBack(ctx context.Context, t time.Time, report func(h Handle, action string)) error
}

// PackShard is the subdirectory (or key prefix) a pack is stored under in
// every layout: the first two characters of its name, so that no
// directory holds more than 1/256 of the packs.
func PackShard(name string) string {
	if len(name) < 2 {
		return name
	}
	return name[:2]
}

// RangeLength checks the range of a Load (length bytes from offset,
// length 0 meaning to the end) against an object of size bytes and
// returns the number of bytes it covers. A range outside the object is a
// permanent error.
func RangeLength(size int64, length int, offset int64) (int64, error) {
	n := int64(length)
	if n == 0 {
		n = size - offset
	}
	if length < 0 || offset < 0 || n < 0 || offset > size-n {
		return 0, Permanent(fmt.Errorf("range offset %d, length %d is past the end of the %d-byte object", offset, length, size))
	}
	return n, nil
}

// LoadAll reads a whole object into memory.
func LoadAll(ctx context.Context, be Backend, h Handle) ([]byte, error) {
	var buf []byte
	err := be.Load(ctx, h, 0, 0, func(rd io.Reader) error {
		b, err := io.ReadAll(rd)
		buf = b
		return err
	})
	return buf, err
}

// TempCleaner is the optional capability of stores that write temporary
// files (local directories, SFTP): remove those a killed writer left, if
// older than olderThan, and say how many.
type TempCleaner interface {
	RemoveStaleTemp(ctx context.Context, olderThan time.Duration) (int, error)
}

// MetadataHinter is implemented by caches: the engine names the packs that
// hold repository metadata (trees), which are worth keeping locally.
type MetadataHinter interface {
	HintMetadata(h Handle)
}

// Wrapper is implemented by decorators (retry, limits, cache, faults) to
// give access to the backend they wrap.
type Wrapper interface {
	Unwrap() Backend
}

// Find returns the first backend in the decorator chain of be, starting
// with be itself, that implements T (an optional capability such as
// Retainer or Versioner).
func Find[T any](be Backend) (T, bool) {
	for be != nil {
		if v, ok := be.(T); ok {
			return v, true
		}
		w, ok := be.(Wrapper)
		if !ok {
			break
		}
		be = w.Unwrap()
	}
	var zero T
	return zero, false
}
