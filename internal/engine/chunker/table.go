package chunker

import (
	"encoding/binary"

	"github.com/zeebo/blake3"
)

// GearContext is the BLAKE3 derive_key context string from which the gear
// table is derived. It is part of the repository format.
const GearContext = "bunker chunker gear v1"

// WindowSize is the length in bytes of the rolling-hash window: a byte's
// contribution to the gear hash is shifted out after 64 steps.
const WindowSize = 64

// Table is the gear table derived from one seed (see the package
// documentation for the construction). It is immutable and safe for
// concurrent use: derive it once per repository and give it to every
// Chunker through NewWithTable.
type Table struct {
	seed [32]byte
	gear [256]uint64
}

// NewTable derives the gear table of seed:
//
//	out := BLAKE3 derive_key(context "bunker chunker gear v1", material seed), 2048 output bytes
//	gear[i] = little-endian uint64 of out[8i : 8i+8]
func NewTable(seed [32]byte) *Table {
	var out [256 * 8]byte
	blake3.DeriveKey(GearContext, seed[:], out[:])
	t := &Table{seed: seed}
	for i := range t.gear {
		t.gear[i] = binary.LittleEndian.Uint64(out[8*i:])
	}
	return t
}
