// Package tree defines the directory-tree metadata that snapshots store:
// Node (one directory entry) and Tree (the sorted entries of one directory),
// and their canonical serialisation as tree blobs.
//
// Names, link targets and xattr names are arbitrary bytes (Go strings need
// not be UTF-8); the JSON encoding keeps them exact (see RawString).
package tree
