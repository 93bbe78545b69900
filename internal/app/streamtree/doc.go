// Package streamtree stores the named streams of a database (or any
// non-file) source as one snapshot tree and reads them back: Writer
// implements source.Sink, Reader implements source.Tree. Files are
// streamed through the archiver's chunker and savers as they are
// produced; only the tree itself is held in memory.
package streamtree
