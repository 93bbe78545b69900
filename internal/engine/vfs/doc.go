// Package vfs is the filesystem the archiver reads and the restorer
// writes, behind a small interface, so that restore and backup edge cases
// (a full disk, an I/O error in the middle of a file, a file that changes
// while it is read) are testable without root and without a real disk.
//
// The interface is relative to open directories, like the *at system
// calls: a Dir names its entries by single path components, never by
// paths, so trees deeper than PATH_MAX work and nothing is reached
// through a symbolic link below a directory the caller opened. Only FS's
// own methods take paths: the targets a user named.
//
// Implementations:
//
//   - OS is the real filesystem through internal/fsmeta: every Dir method
//     is one fsmeta *At call on a directory descriptor opened with
//     O_NOFOLLOW, every name is checked to be a single component, and a
//     file to write is created exclusively. That is the guarantee that a
//     restore stays inside its target whatever names and links a snapshot
//     holds. Reading and writing file content costs no allocation beyond
//     what *os.File does.
//   - Mem is an in-memory tree (files, directories, symlinks, FIFOs,
//     devices, hard links, modes, owners, times, xattrs) for tests.
//   - internal/engine/vfs/faultfs wraps any FS and injects errors (ENOSPC,
//     EIO, ...) at the N-th operation on a path, or runs a hook there, for
//     example to change a file between its lstat and its read.
//
// Metadata is created and applied per entry (Dir.Create, Dir.Apply) rather
// than through separate chown, chmod, chtimes and setxattr calls: the order
// of those steps (owner first, since chown clears set-id bits; times last)
// and their platform differences live in fsmeta, once.
package vfs
