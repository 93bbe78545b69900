package local

import "io/fs"

// perms are the modes and the owner of the files and directories the
// backend creates.
//
// The modes follow restic's rule for group-accessible repositories: the
// mode of the config file decides. A config the group may read makes new
// directories g+rx and new files g+r; a config the group may also write
// makes new directories g+w as well, so the group can add and remove
// objects. Objects stay read-only even then (writing one in place is never
// needed: removing takes a writable directory). A config only its owner
// may read keeps everything private (0700 directories, 0400 files).
//
// The owner keeps a repository one user's: a process running as root in a
// repository owned by someone else (a root-run backup into the postgres
// user's repository, whose archive_command runs as postgres) gives what it
// creates to that owner and group, so the owner can go on writing. Without
// root, new entries only take the repository's group, when the repository
// is group-accessible and the process may set it.
type perms struct {
	dir, file fs.FileMode
	// uid and gid, when not -1, are set on every new file and directory.
	uid, gid int
	// must is whether failing to set them fails the write (as root; a
	// group change by an ordinary member is only attempted).
	must bool
}

// defaultPerms are for a private repository, and where ownership means
// nothing.
var defaultPerms = perms{dir: dirMode, file: fileMode, uid: -1, gid: -1}

// groupModes derives the modes of new entries from the mode of config.
func groupModes(config fs.FileMode) perms {
	p := defaultPerms
	if config&0o040 != 0 {
		p.dir |= 0o050
		p.file |= 0o040
		if config&0o020 != 0 {
			p.dir |= 0o020
		}
	}
	return p
}

// chowns reports whether new entries change owner or group.
func (p perms) chowns() bool { return p.uid >= 0 || p.gid >= 0 }
