// Package fsmeta reads the metadata of directory entries into tree.Node
// values and restores it exactly: the filesystem side of Bunker's fidelity
// requirement.
//
// # Reading
//
// A Reader turns an lstat result into a tree.Node: type, mode bits
// (including setuid, setgid and sticky), ownership as numeric ids plus the
// user and group names (looked up once per id and cached in the Reader),
// modification, access and change times with nanosecond precision, inode,
// st_dev, link count, size of regular files, symlink targets, st_rdev of
// device nodes and, optionally, all extended attributes sorted by name.
// Content and Subtree are left for the caller.
//
// # Restoring
//
// A Restorer creates entries (Create) and applies their metadata (Apply).
// Restoring one tree goes like this:
//
//  1. Create every entry. Directories are made with mode 0700 and regular
//     files (empty) and FIFOs/devices with mode 0600, so nobody else can
//     look in while the restore runs. Sockets are skipped: a socket is only
//     meaningful while a process listens on it, so nothing is created and
//     Create and Apply return nil (restic does the same). Hard links are
//     made with Link instead of Create for the second and later names.
//  2. Write the content of regular files, e.g. with a FileWriter, which
//     leaves all-zero chunks as holes.
//  3. Apply the metadata: ownership first (chown clears setuid/setgid and
//     file capabilities), then extended attributes, then the mode, then the
//     times. Directory times change whenever an entry is added to the
//     directory, so Apply a directory only after all its children are
//     complete (post-order).
//
// Ownership is restored by numeric id from the snapshot, as restic does,
// even when the snapshot's user or group name exists on this host with a
// different id: the numeric id is what the kernel checks, names are only
// a hint. Set Restorer.ByName to prefer the local id of a name that exists
// here, which is what one wants when restoring onto another machine.
//
// # Long paths
//
// Paths longer than PATH_MAX (4096 bytes on Linux) can exist in deep trees
// but cannot be passed to a system call. Every operation therefore also has
// an *At variant taking an open parent directory and a single entry name
// (NodeAt, LstatAt, OpenDirAt, OpenFileAt, CreateAt, ApplyAt, LinkAt,
// CreateFileWriterAt). A tree walker that descends with OpenDirAt and keeps
// the directory handles open never has to build a long path string. On
// Linux, extended attributes of an entry named relative to a directory are
// reached through /proc/self/fd/N/name; without /proc (and on macOS) the
// joined path is used, which works only while it is shorter than PATH_MAX.
//
// # Platforms
//
// Linux has everything. macOS has everything except that FIFOs and device
// nodes are created through joined paths (the system has no mkfifoat or
// mknodat). On Windows and other systems only mode bits (of which Windows
// keeps just the read-only flag) and times are read and restored; there is
// no ownership, no extended attributes, and creating FIFOs and device nodes
// fails with an error wrapping ErrNotSupported.
package fsmeta
