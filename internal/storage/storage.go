package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// Valid reports whether the handle is well formed.
func (h Handle) Valid() error {
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
	// IfNotExists makes Save fail with ErrExists when the object is
	// already there, atomically (conditional create).
	IfNotExists bool
}

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
)

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
	ExtendRetention(ctx context.Context, h Handle, until time.Time) error
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
