//go:build unix

package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/bunkerbackup/bunker/internal/storage"
)

// repoPerms reads the modes and owner for new entries from the repository
// directory root and its config (see perms).
func repoPerms(root string) perms {
	p := defaultPerms
	cfg, cerr := os.Stat(filepath.Join(root, configName))
	if cerr == nil && cfg.Mode().IsRegular() {
		p = groupModes(cfg.Mode().Perm())
	} else {
		cfg = nil
	}
	// The owner is the root directory's; a root-owned directory holding
	// another user's config (a repository moved or chowned by hand) is
	// that user's.
	owner, err := os.Stat(root)
	if err != nil {
		return p
	}
	st, ok := owner.Sys().(*syscall.Stat_t)
	if !ok {
		return p
	}
	if cfg != nil && st.Uid == 0 {
		if cst, ok := cfg.Sys().(*syscall.Stat_t); ok && cst.Uid != 0 {
			st = cst
		}
	}
	switch {
	case os.Geteuid() == 0 && st.Uid != 0:
		p.uid, p.gid, p.must = int(st.Uid), int(st.Gid), true
	case p.dir&0o070 != 0 && int(st.Gid) != os.Getegid():
		p.gid = int(st.Gid)
	}
	return p
}

// chown gives a new entry (open as f, or at path when f is nil) the owner
// and group of p. A file system without owners (EINVAL, ENOTSUP) is
// tolerated; so is an ordinary user who may not set the group.
func (p perms) chown(f *os.File, path string) error {
	if !p.chowns() {
		return nil
	}
	var err error
	if f != nil {
		err = f.Chown(p.uid, p.gid)
	} else {
		err = os.Lchown(path, p.uid, p.gid)
	}
	if err != nil && p.must && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("give %s to the repository's owner (uid %d, gid %d): %w", path, p.uid, p.gid, err)
	}
	return nil
}

// denied explains a permission error of op on target: who owns about
// (target itself, or the directory in which it is created), its mode, and
// who bunker runs as, so that the fix (a chown, a chmod, running as
// another user) is plain. Other errors are returned mapped.
func denied(op, target, about string, err error) error {
	if !errors.Is(err, fs.ErrPermission) {
		return mapErr(err)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return mapErr(err)
	}
	what := about
	if about == target {
		what = "directory"
	}
	fi, serr := os.Stat(about)
	var desc string
	if st, ok := statT(fi, serr); ok {
		if what == "directory" && !fi.IsDir() {
			what = "file"
		}
		desc = fmt.Sprintf("%s owned by %s, mode %04o; ", what, ids(int(st.Uid), int(st.Gid)), fi.Mode().Perm())
	}
	desc += "bunker runs as " + ids(os.Geteuid(), os.Getegid())
	return &osError{sentinel: storage.ErrPermission, err: fmt.Errorf("%s %s: %w (%s)", op, target, errno, desc)}
}

func statT(fi fs.FileInfo, err error) (*syscall.Stat_t, bool) {
	if err != nil {
		return nil, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}

// ids names a user and group: "postgres:postgres (uid 104, gid 109)", or
// just the numbers when they have no names.
func ids(uid, gid int) string {
	u, uerr := user.LookupId(strconv.Itoa(uid))
	g, gerr := user.LookupGroupId(strconv.Itoa(gid))
	if uerr != nil || gerr != nil {
		return fmt.Sprintf("uid %d, gid %d", uid, gid)
	}
	return fmt.Sprintf("%s:%s (uid %d, gid %d)", u.Username, g.Name, uid, gid)
}
