package pack

import (
	"encoding/hex"
	"fmt"
	"github.com/bunkerbackup/bunker/internal/bufpool"
	"runtime"
	"slices"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/blake3"
)

// ID of a blob or pack.
type ID = format.ID

// BlobType says what a blob holds.
type BlobType uint8

// Blob types.
const (
	DataBlob BlobType = 1 // file content
	TreeBlob BlobType = 2 // directory metadata (tree package)
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype-%d", uint8(t))
}

// Valid reports whether t is a known blob type.
func (t BlobType) Valid() bool { return t == DataBlob || t == TreeBlob }

// MaxBlobSize bounds the plaintext of one blob: data blobs are at most the
// chunker's maximum (64 MiB at most), tree blobs of directories with a few
// hundred thousand entries get big. Writers refuse larger blobs.
// maximum is 64 MiB; trees are split well below it).
const MaxBlobSize = 256 << 20

// EntrySize is the encoded size of one trailer entry.
const EntrySize = 1 + 32 + 4 + 4 + 4

// Entry locates one blob inside a pack.
type Entry struct {
	Type      BlobType
	ID        ID
	Offset    uint32 // of the sealed blob from the start of the pack
	Length    uint32 // of the sealed blob
	RawLength uint32 // of the plaintext
}

// Codec compresses and seals blobs. It is safe for concurrent use.
type Codec struct {
	key     *crypto.Key
	none    bool    // store plaintext as is (compression "none")
	enc     Encoder // data blobs
	treeEnc Encoder // tree blobs
	dec     *zstd.Decoder
}

// NewCodec returns a codec sealing with key, compressing with zstd at the
// given level (zstd.SpeedFastest is the default).
func NewCodec(key *crypto.Key, level zstd.EncoderLevel) (*Codec, error) {
	enc, err := NewEncoder(level, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithDecoderMaxMemory(MaxBlobSize+1<<20))
	if err != nil {
		return nil, err
	}
	// Trees are small, repetitive and rewritten at every backup for every
	// changed directory: a stronger level pays for itself in repository
	// growth at negligible CPU cost.
	treeLevel := max(level, zstd.SpeedDefault)
	treeEnc, err := NewEncoder(treeLevel, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	return &Codec{key: key, enc: enc, treeEnc: treeEnc, dec: dec}, nil
}

// DisableCompression makes SealBlob store plaintext uncompressed.
func (c *Codec) DisableCompression() { c.none = true }

// Key returns the sealing key.
func (c *Codec) Key() *crypto.Key { return c.key }

func blobAAD(t BlobType, id ID) []byte {
	aad := make([]byte, 0, 4+1+32)
	aad = append(aad, "BLOB"...)
	aad = append(aad, byte(t))
	return append(aad, id[:]...)
}

// SealBlob compresses (when that shrinks it) and seals plaintext, appending
// to dst. scratch is reused for compression and may be nil; the grown
// scratch is returned for reuse.
func (c *Codec) SealBlob(dst, scratch []byte, t BlobType, id ID, plaintext []byte) (sealed, newScratch []byte) {
	scratch = append(scratch[:0], 1)
	compressed := false
	if !c.none {
		enc := c.enc
		if t == TreeBlob {
			enc = c.treeEnc
		}
		if !incompressible(enc, scratch[1:], plaintext) {
			scratch, compressed = enc.AppendFrame(scratch, plaintext)
		}
	}
	if !compressed || len(scratch) >= len(plaintext)+1 {
		scratch = append(scratch[:0], 0)
		scratch = append(scratch, plaintext...)
	}
	return c.key.Seal(dst, scratch, blobAAD(t, id)), scratch
}

// openBufs recycles the buffers blobs are decrypted into.
var openBufs = bufpool.New(8, 3<<20)

// OpenBlob authenticates, decrypts and decompresses a sealed blob,
// appending the plaintext to dst. rawLen is the expected plaintext length.
func (c *Codec) OpenBlob(dst []byte, t BlobType, id ID, sealed []byte, rawLen int) ([]byte, error) {
	if rawLen < 0 || rawLen > MaxBlobSize {
		return nil, fmt.Errorf("%w: blob %s: plaintext length %d out of range", format.ErrCorrupt, id.Short(), rawLen)
	}
	inner, err := c.key.Open(openBufs.Get(len(sealed)), sealed, blobAAD(t, id))
	if err != nil {
		return nil, fmt.Errorf("%s blob %s: %w", t, id.Short(), err)
	}
	defer openBufs.Put(inner)
	if len(inner) == 0 {
		return nil, fmt.Errorf("%w: blob %s: empty payload", format.ErrCorrupt, id.Short())
	}
	start := len(dst)
	switch inner[0] {
	case 0:
		dst = append(dst, inner[1:]...)
	case 1:
		dst = slices.Grow(dst, rawLen)
		dst, err = c.dec.DecodeAll(inner[1:], dst)
		if err != nil {
			return nil, fmt.Errorf("%w: blob %s: decompress: %v", format.ErrCorrupt, id.Short(), err)
		}
	default:
		return nil, fmt.Errorf("%w: blob %s: unknown compression flag %d", format.ErrCorrupt, id.Short(), inner[0])
	}
	if len(dst)-start != rawLen {
		return nil, fmt.Errorf("%w: blob %s: plaintext is %d bytes, index says %d", format.ErrCorrupt, id.Short(), len(dst)-start, rawLen)
	}
	return dst, nil
}

// Writer assembles one pack in memory. It is not safe for concurrent use.
type Writer struct {
	typ     BlobType
	buf     []byte
	entries []Entry
}

// NewWriter starts a pack for blobs of type t.
func NewWriter(t BlobType, sizeHint int) *Writer {
	return NewWriterBuffer(t, make([]byte, 0, sizeHint))
}

// NewWriterBuffer is NewWriter writing into buf, whose content is
// discarded: callers recycle the buffers of uploaded packs, which spares
// allocating, zeroing and faulting in tens of MiB per pack.
func NewWriterBuffer(t BlobType, buf []byte) *Writer {
	buf = append(buf[:0], format.NewHeader(format.TypePack, byte(t)).Bytes()...)
	return &Writer{typ: t, buf: buf}
}

// Add appends a sealed blob.
func (w *Writer) Add(t BlobType, id ID, sealed []byte, rawLen int) {
	w.entries = append(w.entries, Entry{Type: t, ID: id, Offset: uint32(len(w.buf)), Length: uint32(len(sealed)), RawLength: uint32(rawLen)})
	w.buf = append(w.buf, sealed...)
}

// Size is the current size of the pack.
func (w *Writer) Size() int { return len(w.buf) }

// Overhead is how many bytes the trailer and footer will add to the pack,
// with room for one more blob.
func (w *Writer) Overhead() int {
	return 4 + (len(w.entries)+1)*EntrySize + crypto.Overhead + 4
}

// Count is the number of blobs added.
func (w *Writer) Count() int { return len(w.entries) }

// Type is the blob type of the pack.
func (w *Writer) Type() BlobType { return w.typ }

// Finalize appends the trailer and returns the pack bytes, its ID and its
// entries. The writer must not be used afterwards.
func (w *Writer) Finalize(key *crypto.Key) (data []byte, id ID, entries []Entry) {
	w.buf = AppendTrailer(w.buf, key, w.buf[:format.HeaderSize], w.entries)
	return w.buf, Hash(w.buf), w.entries
}

// AppendTrailer appends to dst the end of a pack whose header is header:
// its sealed trailer listing entries and the footer giving the trailer's
// length.
func AppendTrailer(dst []byte, key *crypto.Key, header []byte, entries []Entry) []byte {
	var e format.Encoder
	e.B = make([]byte, 0, 4+len(entries)*EntrySize)
	e.U32(uint32(len(entries)))
	for _, en := range entries {
		e.U8(byte(en.Type))
		e.ID(en.ID)
		e.U32(en.Offset)
		e.U32(en.Length)
		e.U32(en.RawLength)
	}
	sealed := key.Seal(nil, e.B, trailerAAD(header[:format.HeaderSize]))
	dst = append(dst, sealed...)
	var enc format.Encoder
	enc.U32(uint32(len(sealed)))
	return append(dst, enc.B...)
}

func trailerAAD(header []byte) []byte {
	return append(append([]byte("TRAILER"), header...), 0)
}

// Hash returns the unkeyed BLAKE3-256 of b: the name of packs, index files
// and snapshots.
func Hash(b []byte) ID {
	return ID(blake3.Sum256(b))
}

// Name returns the storage name of an ID.
func Name(id ID) string { return hex.EncodeToString(id[:]) }

// TailSize is how many bytes from the end of a pack a reader should fetch
// to usually get the whole trailer in one request (about 1400 blobs).
const TailSize = 64 << 10

// ParseTrailer decodes the trailer of a pack of packSize bytes given its
// last len(tail) bytes and its first HeaderSize bytes. When the trailer is
// larger than tail, it returns ErrNeedMore with the number of tail bytes
// needed in need.
func ParseTrailer(key *crypto.Key, header, tail []byte, packSize int64) (entries []Entry, blobType BlobType, need int, err error) {
	h, err := format.ParseHeader(header, format.TypePack)
	if err != nil {
		return nil, 0, 0, err
	}
	blobType = BlobType(h.Sub)
	if !blobType.Valid() {
		return nil, 0, 0, fmt.Errorf("%w: pack header has unknown blob type %d", format.ErrCorrupt, h.Sub)
	}
	if len(tail) < 4 || int64(len(tail)) > packSize {
		return nil, 0, 0, fmt.Errorf("%w: pack of %d bytes too short for a trailer", format.ErrCorrupt, packSize)
	}
	tlen := int64(format.NewDecoder(tail[len(tail)-4:], "pack footer").U32())
	if tlen < crypto.Overhead+4 || tlen+4+format.HeaderSize > packSize {
		return nil, 0, 0, fmt.Errorf("%w: pack trailer length %d does not fit a pack of %d bytes", format.ErrCorrupt, tlen, packSize)
	}
	if tlen+4 > int64(len(tail)) {
		return nil, 0, int(tlen + 4), ErrNeedMore
	}
	sealed := tail[int64(len(tail))-4-tlen : len(tail)-4]
	plain, err := key.Open(nil, sealed, trailerAAD(header[:format.HeaderSize]))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("pack trailer: %w", err)
	}
	trailerStart := packSize - 4 - tlen
	d := format.NewDecoder(plain, "pack trailer")
	n := d.Count(EntrySize)
	entries = make([]Entry, 0, n)
	next := int64(format.HeaderSize)
	for i := 0; i < n; i++ {
		en := Entry{Type: BlobType(d.U8()), ID: d.ID(), Offset: d.U32(), Length: d.U32(), RawLength: d.U32()}
		if d.Err() != nil {
			break
		}
		switch {
		case en.Type != blobType:
			err = fmt.Errorf("entry %d has blob type %d in a %s pack", i, en.Type, blobType)
		case int64(en.Offset) != next:
			err = fmt.Errorf("entry %d at offset %d, want %d", i, en.Offset, next)
		case en.Length < crypto.Overhead+1 || int64(en.Offset)+int64(en.Length) > trailerStart:
			err = fmt.Errorf("entry %d of length %d at offset %d overruns the trailer at %d", i, en.Length, en.Offset, trailerStart)
		case en.RawLength > MaxBlobSize:
			err = fmt.Errorf("entry %d has plaintext length %d", i, en.RawLength)
		}
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%w: pack trailer: %v", format.ErrCorrupt, err)
		}
		next = int64(en.Offset) + int64(en.Length)
		entries = append(entries, en)
	}
	if err := d.Finish(); err != nil {
		return nil, 0, 0, err
	}
	if next != trailerStart {
		return nil, 0, 0, fmt.Errorf("%w: pack trailer: blobs end at %d but trailer starts at %d", format.ErrCorrupt, next, trailerStart)
	}
	return entries, blobType, 0, nil
}

// ErrNeedMore asks the caller of ParseTrailer for a longer tail.
var ErrNeedMore = fmt.Errorf("pack trailer needs a longer tail")

// Parse decodes a whole pack in memory (used by check --read-data and
// repair): it returns the entries of its trailer.
func Parse(key *crypto.Key, data []byte) ([]Entry, BlobType, error) {
	if len(data) < format.HeaderSize {
		return nil, 0, fmt.Errorf("%w: pack of %d bytes is too short", format.ErrCorrupt, len(data))
	}
	entries, t, _, err := ParseTrailer(key, data[:format.HeaderSize], data, int64(len(data)))
	return entries, t, err
}
