package main

import (
	"encoding/binary"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
)

// layout is the synthetic repository: everything about its data blobs and
// data packs derives from these numbers, so the measuring process
// recomputes the packs instead of reading them, and no process ever holds
// every blob ID at once.
//
// Blob i (0 <= i < Blobs) is the i-th of a stream cut into files of 1 to 7
// consecutive blobs (4 on average), files into leaf directories of
// FilesPerDir files, leaf directories into "mid" directories of DirsPerMid
// leaves. Pack p holds blobs [p*PerPack, (p+1)*PerPack). Data that is
// referenced by no snapshot comes in two kinds, as forgetting old
// snapshots leaves it: the first DeadMidShare of the mid directories
// (their packs are wholly unused) and DeadFilePercent of the files of the
// other directories, left out of their directory (their packs are partly
// used).
type layout struct {
	Seed            uint64  `json:"seed"`
	Blobs           int     `json:"blobs"`
	PerPack         int     `json:"per_pack"`
	PerIndexFile    int     `json:"per_index_file"`
	Snapshots       int     `json:"snapshots"`
	FilesPerDir     int     `json:"files_per_dir"`
	DirsPerMid      int     `json:"dirs_per_mid"`
	Window          int     `json:"window_mids"`
	DeadMidShare    float64 `json:"dead_mid_share"`
	DeadFilePercent int     `json:"dead_file_percent"`
}

// validate refuses numbers the layout cannot be built from.
func (l *layout) validate() error {
	switch {
	case l.Blobs <= 0 || l.Blobs > 1<<40:
		return fmt.Errorf("blob count %d: want 1 to 2^40", l.Blobs)
	case l.PerPack <= 0 || l.PerPack > 1024:
		return fmt.Errorf("blobs per pack %d: want 1 to 1024 (offsets are 32 bits)", l.PerPack)
	case l.PerIndexFile < l.PerPack:
		return fmt.Errorf("entries per index file %d: want at least the blobs per pack (%d)", l.PerIndexFile, l.PerPack)
	case l.Snapshots <= 0:
		return fmt.Errorf("snapshot count %d: want at least 1", l.Snapshots)
	case l.FilesPerDir <= 0 || l.DirsPerMid <= 0 || l.Window <= 0:
		return fmt.Errorf("files per directory %d, directories per mid %d, window %d: want each at least 1", l.FilesPerDir, l.DirsPerMid, l.Window)
	case l.DeadMidShare < 0 || l.DeadMidShare >= 1 || l.DeadFilePercent < 0 || l.DeadFilePercent >= 100:
		return fmt.Errorf("dead share %g and dead file percent %d: want [0, 1) and [0, 100)", l.DeadMidShare, l.DeadFilePercent)
	}
	return nil
}

// splitmix is the SplitMix64 finalizer: a cheap, well-spread hash.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// stream derives the seed of one kind of value (blob IDs, pack IDs,
// lengths, ...) from the layout's seed.
func (l *layout) stream(kind uint64) uint64 { return splitmix(l.Seed ^ kind<<56) }

// blobID is the ID of data blob i.
func (l *layout) blobID(i int) format.ID {
	s := l.stream(1)
	var id format.ID
	for k := range 4 {
		binary.LittleEndian.PutUint64(id[8*k:], splitmix(s^uint64(i)<<2|uint64(k)))
	}
	return id
}

// packID is the ID of data pack p: 24 bytes of hash, then p masked, so
// that Stat can find the pack number in a name without a table.
func (l *layout) packID(p int) format.ID {
	s := l.stream(2)
	var id format.ID
	for k := range 3 {
		binary.LittleEndian.PutUint64(id[8*k:], splitmix(s^uint64(p)*3+uint64(k)))
	}
	binary.LittleEndian.PutUint64(id[24:], uint64(p)^s)
	return id
}

// packNumber returns the data pack an ID names, if it names one.
func (l *layout) packNumber(id format.ID) (int, bool) {
	p := binary.LittleEndian.Uint64(id[24:]) ^ l.stream(2)
	if p >= uint64(l.packs()) || l.packID(int(p)) != id {
		return 0, false
	}
	return int(p), true
}

// packs is the number of data packs.
func (l *layout) packs() int { return (l.Blobs + l.PerPack - 1) / l.PerPack }

// rawLength is blob i's plaintext length: 512 KiB to 1.5 MiB, 1 MiB on
// average (the chunker's average).
func (l *layout) rawLength(i int) uint32 {
	return uint32(512<<10 + splitmix(l.stream(3)^uint64(i))%(1<<20))
}

// sealedLength is blob i's stored length: compressed to half, plus the
// AEAD's overhead (about 512 KiB on average, so a pack of 32 blobs is
// about the default 16 MiB pack size).
func (l *layout) sealedLength(i int) uint32 { return l.rawLength(i)/2 + crypto.Overhead }

// packSize is the stored size of data pack p: header, blobs, trailer.
func (l *layout) packSize(p int) int64 {
	first, end := p*l.PerPack, min(l.Blobs, (p+1)*l.PerPack)
	size := int64(format.HeaderSize)
	for i := first; i < end; i++ {
		size += int64(l.sealedLength(i))
	}
	return size + 4 + int64(end-first)*pack.EntrySize + crypto.Overhead + 4
}

// packEntries appends the entries of data pack p.
func (l *layout) packEntries(p int, dst []pack.Entry) []pack.Entry {
	off := uint32(format.HeaderSize)
	for i := p * l.PerPack; i < min(l.Blobs, (p+1)*l.PerPack); i++ {
		e := pack.Entry{Type: pack.DataBlob, ID: l.blobID(i), Offset: off, Length: l.sealedLength(i), RawLength: l.rawLength(i)}
		off += e.Length
		dst = append(dst, e)
	}
	return dst
}

// fileLength is how many blobs file f holds before the stream's end cuts
// the last file short.
func (l *layout) fileLength(f int) int { return 1 + int(splitmix(l.stream(4)^uint64(f))%7) }

// deadFile reports whether file f is left out of its directory.
func (l *layout) deadFile(f int) bool {
	return int(splitmix(l.stream(5)^uint64(f))%100) < l.DeadFilePercent
}

// shape is what the file stream comes to: how many files, leaf and mid
// directories, and how many of the mids are dead.
type shape struct {
	files, dirs, mids, deadMids int
}

func (l *layout) shape() shape {
	var s shape
	for pos := 0; pos < l.Blobs; s.files++ {
		pos += l.fileLength(s.files)
	}
	s.dirs = (s.files + l.FilesPerDir - 1) / l.FilesPerDir
	s.mids = (s.dirs + l.DirsPerMid - 1) / l.DirsPerMid
	s.deadMids = int(float64(s.mids) * l.DeadMidShare)
	if s.deadMids == s.mids {
		s.deadMids = s.mids - 1 // keep something to reference
	}
	return s
}

// eachFile calls fn for every file in order with its position: mid, leaf
// directory, and its blobs [start, end).
func (l *layout) eachFile(s shape, fn func(f, dir, mid, start, end int) error) error {
	pos := 0
	for f := 0; f < s.files; f++ {
		end := min(l.Blobs, pos+l.fileLength(f))
		dir := f / l.FilesPerDir
		if err := fn(f, dir, dir/l.DirsPerMid, pos, end); err != nil {
			return err
		}
		pos = end
	}
	return nil
}

// expectation is what a prune should find in the data packs: the packs no
// reachable blob is in, the partly used ones, the unreachable blobs.
type expectation struct {
	deletable, partly, unreachable int
	unusedBytes                    int64
}

func (l *layout) expect() expectation {
	s := l.shape()
	used := make([]int32, l.packs())
	var e expectation
	_ = l.eachFile(s, func(f, dir, mid, start, end int) error {
		if mid < s.deadMids || l.deadFile(f) {
			e.unreachable += end - start
			for i := start; i < end; i++ {
				e.unusedBytes += int64(l.sealedLength(i))
			}
			return nil
		}
		for i := start; i < end; i++ {
			used[i/l.PerPack]++
		}
		return nil
	})
	for p, u := range used {
		n := min(l.Blobs, (p+1)*l.PerPack) - p*l.PerPack
		switch {
		case u == 0:
			e.deletable++
		case int(u) < n:
			e.partly++
		}
	}
	return e
}
