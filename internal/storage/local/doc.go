// Package local implements storage.Backend on a directory of the local file
// system.
//
// Layout of a repository directory:
//
//	config                 the repository config
//	keys/NAME              key files
//	index/NAME             index files
//	snapshots/NAME         snapshots
//	sessions/NAME          writer sessions
//	maint/NAME             maintenance objects
//	packs/XX/NAME          packs, sharded by the first two characters of NAME
//
// Every Save writes a temporary file (named ".tmp-…") in the target
// directory, syncs it, and renames it into place (or hard-links it, for a
// conditional create), then syncs the directory, so an object is either
// wholly there and durable or not there at all, also after a crash. Objects
// are stored read-only. Temporary files a crashed writer left behind are
// never listed; RemoveStaleTemp deletes them.
//
// Permissions follow the repository, not the user or umask of the process
// (Unix): new directories are 0700 and objects 0400, plus group bits when
// the config file is group-readable (g+rx and g+r; g+w on directories when
// config is group-writable), as restic does. So a repository is shared
// with a group by chgrp -R, chmod -R g+rX (g+w on directories) and chmod
// g+r config. A process running as root in a repository owned by another
// user gives that user (and the directory's group) everything it creates,
// so a root-run backup never locks the owner's own writers (an
// archive_command) out. A permission error names the path, its owner and
// mode, and the user bunker runs as.
package local
