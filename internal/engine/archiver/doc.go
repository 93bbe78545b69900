// Package archiver turns directory trees and streams into blobs and trees
// in a repository: the backup side of the engine.
//
// The walker lists directories in one goroutine (holding directory file
// descriptors, so trees deeper than PATH_MAX work), hands regular files to
// a bounded pool of readers, and the readers hand chunks to a pool of
// savers that hash, compress and seal them. A directory's tree blob is
// saved as soon as all its children are done, so the walker never waits for
// a directory to finish before moving on. Unchanged files (same type, size,
// mtime, ctime and inode as in the parent snapshot) are not read again;
// their blob lists are reused after checking every blob is still usable.
//
// The holes of sparse files are not read where the filesystem can tell
// where data lies (SEEK_DATA and SEEK_HOLE on Linux): their zeros are
// produced in memory, so the chunker sees the bytes of a plain read and
// the snapshot is the same, and the ID of an all-zero chunk is computed
// once per length.
package archiver
