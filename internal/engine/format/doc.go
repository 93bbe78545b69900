// Package format holds the pieces of the repository format v1 that every
// stored object shares: the 8-byte object header, the object types, the
// required-features list, and a bounds-checked little-endian decoder for
// the binary payloads. docs/FORMAT.md is the normative description.
package format
