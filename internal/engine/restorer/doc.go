// Package restorer writes a snapshot's tree back to a filesystem: the
// restore side of the engine.
//
// A walker creates directories and files through directory file
// descriptors (so trees deeper than PATH_MAX restore), hands file contents
// to a pool of writers, and applies each directory's metadata only after
// every entry inside it is written, so directory mtimes come out exact.
// All-zero chunks are skipped, which restores sparse files sparse.
package restorer
