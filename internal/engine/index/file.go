package index

import (
	"fmt"
	"slices"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

// ID of a blob, pack or index file.
type ID = format.ID

// fileEntrySize is the encoded size of one entry in an index file.
const fileEntrySize = 32 + 1 + 4 + 4 + 4 + 4

// File is the decoded content of one index file.
type File struct {
	Packs      []ID
	Supersedes []ID // index files this one replaces
	Entries    []FileEntry
}

// FileEntry is one blob of an index file.
type FileEntry struct {
	Pack uint32 // position in File.Packs
	pack.Entry
}

// EncodeFile seals an index file. Entries are sorted by (ID, type) first.
func EncodeFile(key *crypto.Key, f *File) []byte {
	slices.SortFunc(f.Entries, func(a, b FileEntry) int {
		if c := compareID(a.ID, b.ID); c != 0 {
			return c
		}
		return int(a.Type) - int(b.Type)
	})
	var e format.Encoder
	e.B = make([]byte, 0, 12+32*(len(f.Packs)+len(f.Supersedes))+fileEntrySize*len(f.Entries))
	e.U32(uint32(len(f.Packs)))
	for _, p := range f.Packs {
		e.ID(p)
	}
	e.U32(uint32(len(f.Supersedes)))
	for _, p := range f.Supersedes {
		e.ID(p)
	}
	e.U32(uint32(len(f.Entries)))
	for _, en := range f.Entries {
		e.ID(en.ID)
		e.U8(byte(en.Type))
		e.U32(en.Pack)
		e.U32(en.Offset)
		e.U32(en.Length)
		e.U32(en.RawLength)
	}
	hdr := format.NewHeader(format.TypeIndex, 0).Bytes()
	return key.Seal(hdr, e.B, hdr)
}

// DecodeFile opens and validates an index file.
func DecodeFile(key *crypto.Key, b []byte) (*File, error) {
	if _, err := format.ParseHeader(b, format.TypeIndex); err != nil {
		return nil, err
	}
	plain, err := key.Open(nil, b[format.HeaderSize:], b[:format.HeaderSize])
	if err != nil {
		return nil, err
	}
	d := format.NewDecoder(plain, "index")
	f := &File{}
	n := d.Count(32)
	f.Packs = make([]ID, n)
	for i := range f.Packs {
		f.Packs[i] = d.ID()
	}
	n = d.Count(32)
	f.Supersedes = make([]ID, n)
	for i := range f.Supersedes {
		f.Supersedes[i] = d.ID()
	}
	n = d.Count(fileEntrySize)
	f.Entries = make([]FileEntry, n)
	for i := range f.Entries {
		en := &f.Entries[i]
		en.ID = d.ID()
		en.Type = pack.BlobType(d.U8())
		en.Pack = d.U32()
		en.Offset = d.U32()
		en.Length = d.U32()
		en.RawLength = d.U32()
		if d.Err() != nil {
			break
		}
		switch {
		case !en.Type.Valid():
			err = fmt.Errorf("entry %d: unknown blob type %d", i, en.Type)
		case int(en.Pack) >= len(f.Packs):
			err = fmt.Errorf("entry %d: pack number %d of %d", i, en.Pack, len(f.Packs))
		case en.Length <= crypto.Overhead || en.RawLength > pack.MaxBlobSize || en.Offset < format.HeaderSize:
			err = fmt.Errorf("entry %d: implausible offset %d / length %d / plaintext length %d", i, en.Offset, en.Length, en.RawLength)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: index: %v", format.ErrCorrupt, err)
		}
	}
	if err := d.Finish(); err != nil {
		return nil, err
	}
	return f, nil
}

func compareID(a, b ID) int {
	for i := 0; i < len(a); i += 8 {
		x := uint64(a[i])<<56 | uint64(a[i+1])<<48 | uint64(a[i+2])<<40 | uint64(a[i+3])<<32 | uint64(a[i+4])<<24 | uint64(a[i+5])<<16 | uint64(a[i+6])<<8 | uint64(a[i+7])
		y := uint64(b[i])<<56 | uint64(b[i+1])<<48 | uint64(b[i+2])<<40 | uint64(b[i+3])<<32 | uint64(b[i+4])<<24 | uint64(b[i+5])<<16 | uint64(b[i+6])<<8 | uint64(b[i+7])
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Current returns the files of a set that no other file in it supersedes:
// the ones a reader loads.
func Current(files map[ID]*File) map[ID]*File {
	superseded := map[ID]bool{}
	for _, f := range files {
		for _, s := range f.Supersedes {
			superseded[s] = true
		}
	}
	out := make(map[ID]*File, len(files))
	for id, f := range files {
		if !superseded[id] {
			out[id] = f
		}
	}
	return out
}

// MaxFileEntries is how many entries a writer puts in one index file
// (about 51 MB encoded): a reader decodes a file whole, at about 150 bytes
// per entry while it does, so a file must not grow with the repository.
const MaxFileEntries = 1 << 20

// Split returns f as files of at most n entries each, in f's order, each
// naming only the packs of its entries. The last file carries f's
// Supersedes: written last, it claims nothing until the others exist.
// A file of at most n entries is returned as it is.
func (f *File) Split(n int) []*File {
	if len(f.Entries) <= n || n <= 0 {
		return []*File{f}
	}
	var out []*File
	for start := 0; start < len(f.Entries); start += n {
		part := &File{}
		num := map[uint32]uint32{}
		for _, en := range f.Entries[start:min(start+n, len(f.Entries))] {
			k, ok := num[en.Pack]
			if !ok {
				k = uint32(len(part.Packs))
				num[en.Pack] = k
				part.Packs = append(part.Packs, f.Packs[en.Pack])
			}
			en.Pack = k
			part.Entries = append(part.Entries, en)
		}
		out = append(out, part)
	}
	out[len(out)-1].Supersedes = f.Supersedes
	return out
}
