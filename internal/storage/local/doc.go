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
package local
