package mysql

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// xbChunk frames one chunk as mariadb-backup (type 'P', 'E' or an
// unknown one) or XtraBackup (type 'S', with sparse map entries) writes it.
func xbChunk(flags, typ byte, name string, sparse [][2]uint32, payload []byte) []byte {
	b := append([]byte(xbMagic), flags, typ)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(name)))
	b = append(b, name...)
	if typ == xbTypeEOF {
		return b
	}
	if typ == xbTypeSparse {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(sparse)))
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(payload)))
	b = binary.LittleEndian.AppendUint64(b, 0)
	var m []byte
	for _, e := range sparse {
		m = binary.LittleEndian.AppendUint32(m, e[0])
		m = binary.LittleEndian.AppendUint32(m, e[1])
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(append(m, payload...)))
	b = append(b, m...)
	return append(b, payload...)
}

func xbWhole(name, body string) []byte {
	return append(xbChunk(0, xbTypePayload, name, nil, []byte(body)), xbChunk(0, xbTypeEOF, name, nil, nil)...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// guardAll reads a stream through a guard, one byte at a time when
// slow, and returns what came out and the error.
func guardAll(in []byte, slow bool) ([]byte, error) {
	var r io.Reader = bytes.NewReader(in)
	if slow {
		r = iotest.OneByteReader(r)
	}
	g := newXbstreamGuard(r)
	out, err := io.ReadAll(g)
	if err == nil && g.Err() != nil {
		panic("Err set without Read failing")
	}
	return out, err
}

// TestXbstreamGuardPassesRealFraming: what mariadb-backup and XtraBackup
// write (several files, a file in many chunks, sparse chunks, an
// ignorable chunk of a future type, an empty stream) comes out byte for
// byte.
func TestXbstreamGuardPassesRealFraming(t *testing.T) {
	big := bytes.Repeat([]byte("innodb page "), 50000)
	streams := map[string][]byte{
		"empty": nil,
		"files": cat(xbWhole("backup-my.cnf", "[mysqld]\n"), xbWhole("ibdata1", "data"), xbWhole("mysql/user.MAD", ""),
			xbWhole("weird@0020db@002d@00fc/t.frm", "x"), xbWhole("a/b/c/d", "deep")),
		"interleaved": cat(xbChunk(0, xbTypePayload, "ib_logfile0", nil, big), xbChunk(0, xbTypePayload, "ibdata1", nil, []byte("1")),
			xbChunk(0, xbTypePayload, "ib_logfile0", nil, big[:7]), xbChunk(0, xbTypeEOF, "ibdata1", nil, nil), xbChunk(0, xbTypeEOF, "ib_logfile0", nil, nil)),
		"sparse":    cat(xbChunk(0, xbTypeSparse, "test/t1.ibd", [][2]uint32{{0, 3}, {16294, 2}}, []byte("abcde")), xbChunk(0, xbTypeEOF, "test/t1.ibd", nil, nil)),
		"ignorable": cat(xbChunk(xbFlagIgnorable, 'Z', "future", nil, []byte("skip me")), xbWhole("ibdata1", "data")),
		"longest":   xbWhole(strings.Repeat("n", xbMaxPath), "x"),
	}
	for name, in := range streams {
		for _, slow := range []bool{false, true} {
			out, err := guardAll(in, slow)
			if err != nil {
				t.Errorf("%s (slow %v): %v", name, slow, err)
			} else if !bytes.Equal(out, in) {
				t.Errorf("%s (slow %v): %d bytes out of %d, or changed", name, slow, len(out), len(in))
			}
		}
	}
}

// TestXbstreamGuardRefusesEscapes: a chunk whose name leaves the
// directory, and broken framing, stop the stream with an error naming
// the entry, and nothing of that chunk is passed on — what came out is
// exactly the chunks before it.
func TestXbstreamGuardRefusesEscapes(t *testing.T) {
	good := cat(xbWhole("backup-my.cnf", "[mysqld]\n"), xbChunk(0, xbTypePayload, "ibdata1", nil, []byte("half")))
	cases := []struct {
		name string
		bad  []byte
		want string
	}{
		{"dotdot", xbWhole("../../etc/evil", "x"), `"../../etc/evil" has a ".." component`},
		{"inner dotdot", xbWhole("db/../../x", "x"), `"db/../../x" has a ".." component`},
		{"trailing dotdot", xbWhole("db/..", "x"), `".." component`},
		{"absolute", xbWhole("/etc/cron.d/evil", "x"), `"/etc/cron.d/evil" is absolute`},
		{"drive", xbWhole("C:evil", "x"), `"C:evil" is absolute`},
		{"dot", xbWhole("./ibdata1", "x"), `"." component`},
		{"empty component", xbWhole("db//t.frm", "x"), "empty component"},
		{"trailing slash", xbWhole("db/", "x"), "empty component"},
		{"empty", xbWhole("", "x"), "empty name"},
		{"nul", xbWhole("ibdata1\x00/../../x", "x"), "NUL"},
		{"backslash", xbWhole(`..\..\evil`, "x"), "backslash"},
		{"bad name on end chunk", xbChunk(0, xbTypeEOF, "../evil", nil, nil), `"../evil"`},
		{"bad name on sparse chunk", xbChunk(0, xbTypeSparse, "/evil", [][2]uint32{{0, 1}}, []byte("x")), `"/evil"`},
		{"bad name on ignorable chunk", xbChunk(xbFlagIgnorable, 'Z', "../evil", nil, nil), `"../evil"`},
		{"long path", xbWhole(strings.Repeat("n", xbMaxPath+1), "x"), "path of 512 bytes"},
		{"unknown type", xbChunk(0, 'Z', "ibdata1", nil, []byte("x")), "unknown type 0x5a"},
		{"bad magic", []byte("XBSTCK02\x00P\x01\x00\x00\x00a"), "no XBSTCK01 magic"},
		{"huge payload", append(xbChunk(0, xbTypePayload, "ibdata1", nil, nil)[:len(xbMagic)+6+7], bytes.Repeat([]byte{0xff}, 20)...), "payload of"},
	}
	for _, tc := range cases {
		for _, slow := range []bool{false, true} {
			out, err := guardAll(cat(good, tc.bad, xbWhole("after", "y")), slow)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s (slow %v): error %v, want %q", tc.name, slow, err, tc.want)
			}
			if !bytes.Equal(out, good) {
				t.Errorf("%s (slow %v): %d bytes passed on, want the %d before the bad chunk", tc.name, slow, len(out), len(good))
			}
		}
	}
	// A stream cut inside a header or a payload is an error, not a quiet end.
	for _, cut := range []string{"XBSTCK01\x00P\x07\x00", "XBSTCK01\x00P\x07\x00\x00\x00ibd", "XBSTCK01\x00P\x01\x00\x00\x00a\x01\x00"} {
		out, err := guardAll(cat(good, []byte(cut)), false)
		if err == nil || !strings.Contains(err.Error(), "ends inside the header of chunk 4") || !bytes.Equal(out, good) {
			t.Errorf("cut header %q: %v, %d bytes passed on", cut, err, len(out))
		}
	}
	in := xbChunk(0, xbTypePayload, "ibdata1", nil, []byte("0123456789"))
	if _, err := guardAll(in[:len(in)-3], false); err == nil || !strings.Contains(err.Error(), "3 bytes short") {
		t.Errorf("cut payload: %v", err)
	}
}

// FuzzXbstreamNames: whatever the stream, the guard never panics, passes
// on a prefix of its input (all of it when it reports no error), and
// never passes on a whole chunk header whose name is unsafe: a second
// guard reading what the first passed on finds at worst a stream cut
// inside a payload.
func FuzzXbstreamNames(f *testing.F) {
	f.Add(cat(xbWhole("backup-my.cnf", "[mysqld]\n"), xbWhole("ibdata1", "data")))
	f.Add(cat(xbWhole("ok", "x"), xbWhole("../../etc/evil", "x")))
	f.Add(xbWhole("/abs", ""))
	f.Add(cat(xbChunk(0, xbTypeSparse, "t.ibd", [][2]uint32{{0, 1}}, []byte("x")), xbChunk(xbFlagIgnorable, 0, "f", nil, nil)))
	f.Add([]byte("XBSTCK01\x00P\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := guardAll(in, false)
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("passed on bytes that are not a prefix of the input")
		}
		if err == nil && len(out) != len(in) {
			t.Fatalf("no error, but %d of %d bytes passed on", len(out), len(in))
		}
		if _, err2 := guardAll(out, false); err2 != nil && !strings.Contains(err2.Error(), "ends inside a chunk") {
			t.Fatalf("passed on a stream that fails with %v (first guard: %v)", err2, err)
		}
	})
}

// realBackupCnf is what mariadb-backup 10.11 writes, with the lines an
// encrypted backup adds.
const realBackupCnf = `# This options file was generated by innobackupex.

# The server
[mysqld]
innodb_checksum_algorithm=crc32
innodb_data_file_path=ibdata1:12M:autoextend
innodb_log_file_size=100663296
innodb_page_size=16384
innodb_undo_directory=./
innodb_undo_tablespaces=0
innodb_compression_level=6
plugin_load=file_key_management
file_key_management_filename=/etc/mysql/encryption/keyfile
`

// TestCheckBackupCnf: what mariadb-backup writes passes; options a
// hostile backup-my.cnf would use to make --prepare write (or load code)
// outside the data directory are refused, however they are spelled.
func TestCheckBackupCnf(t *testing.T) {
	if err := checkBackupCnf([]byte(realBackupCnf)); err != nil {
		t.Fatalf("a real backup-my.cnf: %v", err)
	}
	for _, line := range []string{
		"innodb_data_file_path=/var/lib/mysql/ibdata1:12M:autoextend",
		"innodb_data_file_path=ibdata1:12M;/var/lib/mysql/ibdata2:12M:autoextend",
		"innodb_data_file_path = ../../ibdata1:12M",
		`innodb_data_file_path="/dev/sdb:10Gnewraw"`,
		"innodb-data-file-path=/x:12M",
		"loose_innodb_data_file_path=/x:12M",
		"innodb_data_file_p=/x:12M",
		"innodb_data_home_dir=/var/lib/mysql",
		"innodb_undo_directory=/var/lib/mysql",
		"innodb_undo_directory=./../..",
		"innodb_log_group_home_dir=/var/lib/mysql",
		"aria_log_dir_path=/var/lib/mysql",
		"plugin_dir=./plugins",
		"plugin-dir=/tmp",
		"!include /etc/mysql/my.cnf",
		"!includedir /tmp/x",
	} {
		if err := checkBackupCnf([]byte(realBackupCnf + line + "\n")); err == nil || !strings.Contains(err.Error(), "backup-my.cnf line 14") {
			t.Errorf("%s: %v", line, err)
		}
	}
}

func FuzzCheckBackupCnf(f *testing.F) {
	f.Add([]byte(realBackupCnf))
	f.Add([]byte("[mysqld]\ninnodb_data_file_path=/a:1M;b:2M\n!include x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = checkBackupCnf(b) // must not panic
	})
}
