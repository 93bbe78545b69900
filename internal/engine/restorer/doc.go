// Package restorer writes a snapshot's tree back to a filesystem: the
// restore side of the engine.
//
// A walker creates directories and files through directory file
// descriptors (so trees deeper than PATH_MAX restore), hands file contents
// to a pool of writers, and applies each directory's metadata only after
// every entry inside it is written, so directory mtimes come out exact.
// All-zero 4 KiB blocks are not written, which restores sparse files
// sparse, and an all-zero blob, once loaded, is not loaded again.
//
// With read-ahead (remote stores), blobs are read in large ranges of
// packs, each needed byte once: blobs that later files share wait in
// bounded memory, then in a private temporary file (spill.go), never
// downloaded again.
//
// A file is written under a marked name in its directory (PartialName)
// and renamed to its real name only when it is complete, verified (with
// Options.Verify) and has its metadata; an existing file of that name
// stays whole until then. A file that fails is removed and reported by
// name; one that fails verification, or whose restore is interrupted,
// stays only under the marked name. Later names of a hard-linked file are
// linked once the first is complete. Nothing is created through a
// symbolic link: every entry is made relative to a directory descriptor
// opened with O_NOFOLLOW, and names come from trees that hold only single
// path components, each name once. A file's partial name is created
// exclusively, never opened if something is there; an entry of the
// snapshot named like a sibling file's partial name is refused.
package restorer
