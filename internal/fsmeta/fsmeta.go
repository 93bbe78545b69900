package fsmeta

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/tree"
)

// ErrNotSupported is wrapped by the errors of operations this platform
// cannot do, such as creating a device node on Windows. It matches
// errors.ErrUnsupported too.
var ErrNotSupported = fmt.Errorf("not supported on this platform: %w", errors.ErrUnsupported)

// Permission bits of a Unix st_mode beyond the rwx bits.
const (
	modeSetuid = 0o4000
	modeSetgid = 0o2000
	modeSticky = 0o1000
)

// NodeTypeOf maps the type bits of a Go file mode to a node type. Modes that
// no node type describes (fs.ModeIrregular, for example) are an error.
func NodeTypeOf(m fs.FileMode) (tree.NodeType, error) {
	switch m.Type() {
	case 0:
		return tree.TypeFile, nil
	case fs.ModeDir:
		return tree.TypeDir, nil
	case fs.ModeSymlink:
		return tree.TypeSymlink, nil
	case fs.ModeNamedPipe:
		return tree.TypeFIFO, nil
	case fs.ModeDevice:
		return tree.TypeDev, nil
	case fs.ModeDevice | fs.ModeCharDevice:
		return tree.TypeCharDev, nil
	case fs.ModeSocket:
		return tree.TypeSocket, nil
	}
	return "", fmt.Errorf("unsupported file type %v", m.Type())
}

// unixPerm returns the Unix permission bits (rwx, setuid, setgid, sticky)
// of a Go file mode, as chmod takes them.
func unixPerm(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= modeSetuid
	}
	if m&fs.ModeSetgid != 0 {
		p |= modeSetgid
	}
	if m&fs.ModeSticky != 0 {
		p |= modeSticky
	}
	return p
}

// checkName rejects entry names that are not a single path component, so
// that the *At functions never leave their directory (snapshot names are
// untrusted input on restore).
func checkName(name string) error {
	if err := tree.ValidName(name); err != nil {
		return err
	}
	if filepath.Separator != '/' && strings.ContainsRune(name, filepath.Separator) {
		return fmt.Errorf("invalid node name %q: contains %q", name, filepath.Separator)
	}
	return nil
}

// joinName is the path of name in dir, for error messages and for the
// platforms that have no *at system calls.
func joinName(dir *os.File, name string) string {
	return filepath.Join(dir.Name(), name)
}

func sortXattrs(xs []tree.Xattr) {
	slices.SortFunc(xs, func(a, b tree.Xattr) int { return strings.Compare(string(a.Name), string(b.Name)) })
}

// utc converts seconds and nanoseconds since the epoch to a UTC time. UTC
// keeps tree blobs independent of the time zone the backup ran in.
func utc(sec, nsec int64) time.Time {
	return time.Unix(sec, nsec).UTC()
}

// Reader reads the metadata of directory entries. It caches user and group
// name lookups (misses included), so one Reader should serve a whole
// backup. A Reader is safe for concurrent use; the zero value is ready to
// use.
type Reader struct {
	mu     sync.Mutex
	users  map[uint32]string
	groups map[uint32]string
}

// NewReader returns a Reader with empty name caches.
func NewReader() *Reader {
	return &Reader{users: map[uint32]string{}, groups: map[uint32]string{}}
}

// UserName returns the name of the user with the given id, or "" when the
// host has none. Results are cached.
func (r *Reader) UserName(uid uint32) string {
	return r.cachedName(&r.users, uid, func(id string) (string, error) {
		u, err := user.LookupId(id)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	})
}

// GroupName returns the name of the group with the given id, or "" when the
// host has none. Results are cached.
func (r *Reader) GroupName(gid uint32) string {
	return r.cachedName(&r.groups, gid, func(id string) (string, error) {
		g, err := user.LookupGroupId(id)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})
}

func (r *Reader) cachedName(cache *map[uint32]string, id uint32, lookup func(string) (string, error)) string {
	r.mu.Lock()
	name, ok := (*cache)[id]
	r.mu.Unlock()
	if ok {
		return name
	}
	// Look up without holding the lock: a lookup may read /etc/passwd or
	// ask NSS. Two goroutines may look up the same id at once; both get
	// the same answer.
	name, err := lookup(strconv.FormatUint(uint64(id), 10))
	if err != nil {
		name = "" // unknown id (or no user database): cache the miss too
	}
	r.mu.Lock()
	if *cache == nil {
		*cache = map[uint32]string{}
	}
	(*cache)[id] = name
	r.mu.Unlock()
	return name
}

// Restorer creates directory entries and applies their metadata. Set the
// options before first use. A Restorer is safe for concurrent use.
type Restorer struct {
	// Owner restores uid and gid (lchown). It needs root (CAP_CHOWN) for
	// anything but one's own ids; NewRestorer enables it when the
	// effective user is root. When chown fails, Apply clears setuid and
	// setgid from the mode it sets, so no set-id file ends up owned by the
	// wrong user.
	Owner bool
	// Xattrs restores extended attributes.
	Xattrs bool
	// ByName prefers the local id of the snapshot's user and group names
	// when those names exist on this host. By default (false) the numeric
	// ids from the snapshot are used, as restic does.
	ByName bool

	mu     sync.Mutex
	uids   map[string]idLookup
	gids   map[string]idLookup
	lookup func(kind, name string) (uint32, bool) // for tests; nil: os/user
}

type idLookup struct {
	id uint32
	ok bool
}

// NewRestorer returns a Restorer that restores ownership when running as
// root, and extended attributes.
func NewRestorer() *Restorer {
	return &Restorer{Owner: os.Geteuid() == 0, Xattrs: true}
}

// ownerIDs returns the uid and gid to give the restored entry n.
func (r *Restorer) ownerIDs(n *tree.Node) (uid, gid uint32) {
	uid, gid = n.UID, n.GID
	if !r.ByName {
		return uid, gid
	}
	if n.User != "" {
		if id, ok := r.cachedID(&r.uids, "user", n.User); ok {
			uid = id
		}
	}
	if n.Group != "" {
		if id, ok := r.cachedID(&r.gids, "group", n.Group); ok {
			gid = id
		}
	}
	return uid, gid
}

func (r *Restorer) cachedID(cache *map[string]idLookup, kind, name string) (uint32, bool) {
	r.mu.Lock()
	res, ok := (*cache)[name]
	lookup := r.lookup
	r.mu.Unlock()
	if ok {
		return res.id, res.ok
	}
	if lookup == nil {
		lookup = lookupID
	}
	res.id, res.ok = lookup(kind, name)
	r.mu.Lock()
	if *cache == nil {
		*cache = map[string]idLookup{}
	}
	(*cache)[name] = res
	r.mu.Unlock()
	return res.id, res.ok
}

// lookupID finds the local id of a user or group name.
func lookupID(kind, name string) (uint32, bool) {
	var s string
	switch kind {
	case "user":
		u, err := user.Lookup(name)
		if err != nil {
			return 0, false
		}
		s = u.Uid
	default:
		g, err := user.LookupGroup(name)
		if err != nil {
			return 0, false
		}
		s = g.Gid
	}
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false // not a Unix id (e.g. a Windows SID)
	}
	return uint32(id), true
}
