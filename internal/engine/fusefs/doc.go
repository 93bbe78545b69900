// Package fusefs presents a repository's snapshots as a read-only FUSE
// filesystem (with github.com/hanwen/go-fuse/v2), as restic and borg
// mount do:
//
//	snapshots/<time>/     one directory per snapshot, named by its time
//	                      (2026-12-07T09:41:00+01:00; "-1", "-2"… when
//	                      several share a time)
//	ids/<short id>/       the same snapshots by ID
//	hosts/<host>/<time>/  by host
//	tags/<tag>/<time>/    by tag
//	latest                a symlink to the newest snapshot in snapshots/
//
// Inside a snapshot are its tree's directories, files, symlinks and
// special files with the size, mode, times and owner the tree records.
// Trees are loaded when a directory is first looked up or listed; a read
// of a file loads only the data blobs covering the range read, through a
// cache bounded in bytes. Nothing is ever written: the filesystem is
// mounted read-only and refuses opens for writing with EROFS.
//
// The snapshot list is fixed at mount time. Mounting uses fusermount3
// (Debian package fuse3) and /dev/fuse.
package fusefs
