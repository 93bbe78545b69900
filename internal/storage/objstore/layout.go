package objstore

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// configName is the key of the config under the prefix.
const configName = "config"

// MaxPrefixLen is the longest prefix CleanPrefix accepts, in bytes.
const MaxPrefixLen = 512

// Layout maps the handles of one repository to object keys and back. The
// zero Layout is the repository at the root of the bucket.
type Layout struct {
	root string // "prefix/" or ""
}

// NewLayout returns the layout of the repository under prefix, which has
// no leading or trailing slash (see CleanPrefix); "" is the root of the
// bucket.
func NewLayout(prefix string) Layout {
	if prefix == "" {
		return Layout{}
	}
	return Layout{root: prefix + "/"}
}

// Root is the start of every key of the repository: "prefix/", or "" at
// the root of the bucket.
func (l Layout) Root() string { return l.root }

// Dir is the key prefix of the objects of type t, ending in "/". (The
// config is no directory: its key is Key(storage.Handle{Type:
// storage.ConfigFile}).)
func (l Layout) Dir(t storage.FileType) string { return l.root + string(t) + "/" }

// Key is the object key of a valid handle.
func (l Layout) Key(h storage.Handle) string {
	switch h.Type {
	case storage.ConfigFile:
		return l.root + configName
	case storage.PackFile:
		return l.Dir(h.Type) + storage.PackShard(h.Name) + "/" + h.Name
	default:
		return l.Dir(h.Type) + h.Name
	}
}

// ListPrefix is the key prefix a listing of type t asks the store for:
// the config's key for the config, Dir(t) for the other types. It
// reports false for an unknown type. A listing may return keys that are
// no objects of t (such as "config.bak"); HandleOf tells them apart.
func (l Layout) ListPrefix(t storage.FileType) (string, bool) {
	switch t {
	case storage.ConfigFile:
		return l.Key(storage.Handle{Type: t}), true
	case storage.KeyFile, storage.PackFile, storage.IndexFile, storage.SnapshotFile, storage.SessionFile, storage.MaintFile:
		return l.Dir(t), true
	default:
		return "", false
	}
}

// HandleOf returns the valid handle whose key is key, if there is one.
func (l Layout) HandleOf(key string) (storage.Handle, bool) {
	rest, ok := strings.CutPrefix(key, l.root)
	if !ok {
		return storage.Handle{}, false
	}
	if rest == configName {
		return storage.Handle{Type: storage.ConfigFile}, true
	}
	t, name, ok := strings.Cut(rest, "/")
	if !ok {
		return storage.Handle{}, false
	}
	h := storage.Handle{Type: storage.FileType(t), Name: name}
	if h.Type == storage.PackFile {
		s, n, ok := strings.Cut(name, "/")
		if !ok || s != storage.PackShard(n) {
			return storage.Handle{}, false
		}
		h.Name = n
	}
	if h.Type == storage.ConfigFile || h.Valid() != nil {
		return storage.Handle{}, false
	}
	return h, true
}

// CleanPrefix trims the slashes around a key prefix and rejects empty,
// "." and ".." path elements, control characters and prefixes longer
// than MaxPrefixLen bytes. The empty prefix (the root of the bucket) is
// valid.
func CleanPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	if path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("invalid prefix %q: no empty, \".\" or \"..\" path elements", p)
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("invalid prefix %q: control character", p)
		}
	}
	if len(p) > MaxPrefixLen {
		return "", errors.New("invalid prefix: longer than 512 bytes")
	}
	return p, nil
}
