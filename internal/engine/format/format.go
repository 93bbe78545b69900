package format

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the repository format version this code writes and reads.
const Version = 1

// HeaderSize is the size of the object header.
const HeaderSize = 8

// Magic starts every stored object.
var Magic = [4]byte{'B', 'N', 'K', 'R'}

// ObjectType is the type byte of the header.
type ObjectType byte

// Object types.
const (
	TypeConfig   ObjectType = 1
	TypeKey      ObjectType = 2
	TypePack     ObjectType = 3
	TypeIndex    ObjectType = 4
	TypeSnapshot ObjectType = 5
	TypeSession  ObjectType = 6
	TypeMaint    ObjectType = 7
)

func (t ObjectType) String() string {
	switch t {
	case TypeConfig:
		return "config"
	case TypeKey:
		return "key"
	case TypePack:
		return "pack"
	case TypeIndex:
		return "index"
	case TypeSnapshot:
		return "snapshot"
	case TypeSession:
		return "session"
	case TypeMaint:
		return "maintenance"
	}
	return fmt.Sprintf("type-%d", byte(t))
}

// ErrNewerFormat is returned for objects written by a newer format version.
var ErrNewerFormat = errors.New("repository uses a newer format than this bunker supports; upgrade bunker")

// ErrCorrupt marks decoding errors of damaged or hostile objects.
var ErrCorrupt = errors.New("corrupt object")

// Header is the first 8 bytes of every object:
//
//	0..3  magic "BNKR"
//	4     format version (1)
//	5     object type
//	6     sub-type (packs: blob type of the pack; otherwise 0)
//	7     reserved, 0
type Header struct {
	Version byte
	Type    ObjectType
	Sub     byte
}

// NewHeader returns a header of the current version.
func NewHeader(t ObjectType, sub byte) Header { return Header{Version: Version, Type: t, Sub: sub} }

// Bytes encodes the header.
func (h Header) Bytes() []byte {
	b := make([]byte, HeaderSize)
	copy(b, Magic[:])
	b[4], b[5], b[6] = h.Version, byte(h.Type), h.Sub
	return b
}

// ParseHeader decodes and checks the header of an object that must be of
// type want.
func ParseHeader(b []byte, want ObjectType) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes is too short for a header", ErrCorrupt, len(b))
	}
	if [4]byte(b[:4]) != Magic {
		return Header{}, fmt.Errorf("%w: bad magic %q (not a bunker object)", ErrCorrupt, b[:4])
	}
	h := Header{Version: b[4], Type: ObjectType(b[5]), Sub: b[6]}
	if h.Version > Version {
		return h, fmt.Errorf("%s object of format v%d: %w (this is v%d)", ObjectType(b[5]), h.Version, ErrNewerFormat, Version)
	}
	if h.Version == 0 {
		return h, fmt.Errorf("%w: format version 0", ErrCorrupt)
	}
	if h.Type != want {
		return h, fmt.Errorf("%w: object type %s, want %s", ErrCorrupt, h.Type, want)
	}
	if b[7] != 0 {
		return h, fmt.Errorf("%w: reserved header byte is %d", ErrCorrupt, b[7])
	}
	return h, nil
}

// Known features. A repository lists in its config the features a reader
// must understand; a reader refuses a repository with an unknown one.
var KnownFeatures = map[string]bool{
	// object-lock: every object but sessions and maintenance objects is
	// written with a retain-until date (config.object_lock); a bunker that
	// did not know would write unprotected objects.
	"object-lock": true,
}

// CheckFeatures returns an error naming required features this version
// does not know.
func CheckFeatures(required []string) error {
	var unknown []string
	for _, f := range required {
		if !KnownFeatures[f] {
			unknown = append(unknown, f)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("repository requires features %q unknown to this bunker: %w", unknown, ErrNewerFormat)
	}
	return nil
}

// Decoder reads little-endian fields from a byte slice, remembering the
// first error (a read past the end) so callers check once.
type Decoder struct {
	b   []byte
	off int
	err error
	// What names the object in error messages.
	What string
}

// NewDecoder returns a decoder over b.
func NewDecoder(b []byte, what string) *Decoder { return &Decoder{b: b, What: what} }

func (d *Decoder) need(n int) bool {
	if d.err != nil {
		return false
	}
	if n < 0 || len(d.b)-d.off < n {
		d.err = fmt.Errorf("%w: %s: truncated at offset %d (need %d more bytes, have %d)", ErrCorrupt, d.What, d.off, n, len(d.b)-d.off)
		return false
	}
	return true
}

// U8 reads one byte.
func (d *Decoder) U8() byte {
	if !d.need(1) {
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

// U32 reads a uint32.
func (d *Decoder) U32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v
}

// U64 reads a uint64.
func (d *Decoder) U64() uint64 {
	if !d.need(8) {
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// ID reads 32 bytes.
func (d *Decoder) ID() (id [32]byte) {
	if !d.need(32) {
		return id
	}
	copy(id[:], d.b[d.off:])
	d.off += 32
	return id
}

// Count reads a uint32 element count and checks that count*elemSize bytes
// remain, so a hostile count cannot make the caller allocate gigabytes.
func (d *Decoder) Count(elemSize int) int {
	n := d.U32()
	if d.err != nil {
		return 0
	}
	if uint64(n)*uint64(elemSize) > uint64(len(d.b)-d.off) {
		d.err = fmt.Errorf("%w: %s: count %d at offset %d exceeds the remaining %d bytes", ErrCorrupt, d.What, n, d.off-4, len(d.b)-d.off)
		return 0
	}
	return int(n)
}

// Offset is the current read position.
func (d *Decoder) Offset() int { return d.off }

// Err is the first error met.
func (d *Decoder) Err() error { return d.err }

// Finish returns the first error, or an error if bytes remain unread.
func (d *Decoder) Finish() error {
	if d.err != nil {
		return d.err
	}
	if d.off != len(d.b) {
		return fmt.Errorf("%w: %s: %d trailing bytes at offset %d", ErrCorrupt, d.What, len(d.b)-d.off, d.off)
	}
	return nil
}

// Encoder appends little-endian fields.
type Encoder struct{ B []byte }

// U8 appends a byte.
func (e *Encoder) U8(v byte) { e.B = append(e.B, v) }

// U32 appends a uint32.
func (e *Encoder) U32(v uint32) { e.B = binary.LittleEndian.AppendUint32(e.B, v) }

// U64 appends a uint64.
func (e *Encoder) U64(v uint64) { e.B = binary.LittleEndian.AppendUint64(e.B, v) }

// ID appends 32 bytes.
func (e *Encoder) ID(id [32]byte) { e.B = append(e.B, id[:]...) }
