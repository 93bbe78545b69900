// Package index maps blob IDs to their location in packs.
//
// Index files are write-once: each backup session writes one (or several,
// at checkpoints) listing the blobs of the packs it uploaded; maintenance
// merges them into new files that name the files they supersede. A reader
// loads every file not superseded by another.
//
// The in-memory Index is a sorted array of fixed-size entries (49 bytes of
// payload each) plus a small hash buffer for recent additions that is merged
// into the array in batches, so memory grows by a flat ~52 bytes per blob,
// not by a Go map entry per blob.
package index
