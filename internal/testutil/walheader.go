package testutil

import "encoding/binary"

// WALSegmentHeader is the long page header PostgreSQL writes at the start
// of a WAL segment of the cluster sysid (16 MiB segments, 8 KiB pages):
// what wal-push reads the system identifier from. Tests put it in front
// of made-up segment contents.
func WALSegmentHeader(sysid uint64) []byte {
	h := make([]byte, 40)
	binary.LittleEndian.PutUint16(h[0:], 0xD110)        // xlp_magic of PostgreSQL 15
	binary.LittleEndian.PutUint16(h[2:], 0x0002|0x0004) // XLP_LONG_HEADER | XLP_BKP_REMOVABLE
	binary.LittleEndian.PutUint32(h[4:], 1)             // timeline
	binary.LittleEndian.PutUint64(h[24:], sysid)
	binary.LittleEndian.PutUint32(h[32:], 16<<20)
	binary.LittleEndian.PutUint32(h[36:], 8192)
	return h
}
