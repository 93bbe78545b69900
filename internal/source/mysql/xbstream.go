package mysql

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// The xbstream framing (mariadb-backup's and Percona XtraBackup's
// --stream=xbstream), as their readers parse it. A stream is a sequence
// of chunks, all little-endian:
//
//	magic "XBSTCK01" | flags (1) | type (1) | path length (4) | path
//	then, for every type but 'E':
//	[sparse map entries (4), type 'S' only] | payload length (8) |
//	payload offset (8) | CRC-32 (4) | [sparse map, 8 bytes an entry] | payload
//
// Types: 'P' payload, 'S' sparse payload (Percona), 'E' end of file; an
// unknown type is framed like 'P' and allowed only with the ignorable
// flag (bit 0). The readers refuse a path of FN_REFLEN (512) bytes or
// more.
const (
	xbMagic          = "XBSTCK01"
	xbFixedHeader    = len(xbMagic) + 1 + 1 + 4
	xbMaxPath        = 511
	xbFlagIgnorable  = 0x01
	xbTypePayload    = 'P'
	xbTypeSparse     = 'S'
	xbTypeEOF        = 'E'
	xbMaxHeaderBytes = xbFixedHeader + xbMaxPath + 4 + 8 + 8 + 4
)

// xbstreamGuard passes an xbstream through unchanged while checking the
// path of every chunk: a chunk's header is held back (at most a few
// hundred bytes) until its path is known to be safe, so an extractor
// reading from the guard never sees a chunk it must not write; payloads
// are passed on as they come, never buffered. The first bad chunk, bad
// framing or early end is an error from Read (and from Err) that names
// the entry and its offset in the stream.
type xbstreamGuard struct {
	r   io.Reader
	off int64 // of the next byte read from r

	hdr  [xbMaxHeaderBytes]byte
	held []byte // header bytes checked but not yet passed on
	body uint64 // bytes of sparse map and payload still to pass on
	// chunks counts the chunks seen, for messages.
	chunks int
	err    error
}

func newXbstreamGuard(r io.Reader) *xbstreamGuard { return &xbstreamGuard{r: r} }

// Err is the error that stopped the stream, if any (io.EOF excluded).
func (g *xbstreamGuard) Err() error { return g.err }

func (g *xbstreamGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(g.held) == 0 && g.body == 0 {
		if err := g.nextHeader(); err != nil {
			if err != io.EOF {
				g.err = err
			}
			return 0, err
		}
	}
	if len(g.held) > 0 {
		n := copy(p, g.held)
		g.held = g.held[n:]
		return n, nil
	}
	if uint64(len(p)) > g.body {
		p = p[:g.body]
	}
	n, err := g.r.Read(p)
	g.off += int64(n)
	g.body -= uint64(n)
	if err == io.EOF {
		if g.body > 0 {
			g.err = fmt.Errorf("xbstream ends inside a chunk, %d bytes short, at offset %d", g.body, g.off)
			return n, g.err
		}
		err = nil // the next Read finds the end at a chunk boundary
	}
	if err != nil {
		g.err = err
	}
	return n, err
}

// nextHeader reads and checks the header of the next chunk into g.held
// and sets g.body; io.EOF is the end of the stream at a chunk boundary.
func (g *xbstreamGuard) nextHeader() error {
	start, n := g.off, g.chunks+1 // where chunk n starts, for messages
	h := g.hdr[:0]
	read := func(size int) ([]byte, error) {
		m, err := io.ReadFull(g.r, g.hdr[len(h):len(h)+size])
		g.off += int64(m)
		h = g.hdr[:len(h)+m]
		if err != nil {
			if err == io.EOF && len(h) == 0 {
				return nil, io.EOF
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return nil, fmt.Errorf("xbstream ends inside the header of chunk %d at offset %d", n, start)
			}
			return nil, err
		}
		return h[len(h)-size:], nil
	}
	b, err := read(xbFixedHeader)
	if err != nil {
		return err
	}
	g.chunks = n
	if string(b[:len(xbMagic)]) != xbMagic {
		return fmt.Errorf("not an xbstream: chunk %d at offset %d has no %s magic", n, start, xbMagic)
	}
	flags, typ := b[8], b[9]
	plen := binary.LittleEndian.Uint32(b[10:14])
	if plen > xbMaxPath {
		return fmt.Errorf("xbstream chunk %d at offset %d: path of %d bytes (at most %d)", n, start, plen, xbMaxPath)
	}
	name, err := read(int(plen))
	if err != nil {
		return err
	}
	if err := checkXbstreamName(string(name)); err != nil {
		return fmt.Errorf("xbstream chunk %d at offset %d: %w", n, start, err)
	}
	switch {
	case typ == xbTypeEOF:
		g.held = h
		return nil
	case typ == xbTypePayload, typ == xbTypeSparse:
	case flags&xbFlagIgnorable == 0:
		return fmt.Errorf("xbstream chunk %d at offset %d (entry %q): unknown type 0x%02x", n, start, name, typ)
	}
	var sparse uint64
	if typ == xbTypeSparse {
		b, err := read(4)
		if err != nil {
			return err
		}
		sparse = uint64(binary.LittleEndian.Uint32(b)) * 8
	}
	b, err = read(8 + 8 + 4)
	if err != nil {
		return err
	}
	length := binary.LittleEndian.Uint64(b)
	if length > 1<<62 {
		return fmt.Errorf("xbstream chunk %d at offset %d (entry %q): payload of %d bytes", n, start, name, length)
	}
	g.held, g.body = h, sparse+length
	return nil
}

// checkXbstreamName refuses an entry name that would put the file
// anywhere but beneath the directory it is extracted into: an empty or
// absolute name (or one with a Windows drive), a "." or ".." or empty
// component, a NUL or backslash (Windows' separator; the server encodes
// one in a table's file name as @005c, so no real backup holds one). mbstream refuses "./x" itself,
// so no real backup starts one that way either.
func checkXbstreamName(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("entry %q %s: refused, it could be written outside the data directory", name, why)
	}
	switch {
	case name == "":
		return errors.New("entry with an empty name: refused")
	case strings.HasPrefix(name, "/"), len(name) >= 2 && name[1] == ':':
		return bad("is absolute")
	case strings.ContainsRune(name, 0):
		return bad("holds a NUL byte")
	case strings.ContainsRune(name, '\\'):
		return bad("holds a backslash")
	}
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "":
			return bad("has an empty component")
		case ".", "..":
			return bad(fmt.Sprintf("has a %q component", c))
		}
	}
	return nil
}

// backupCnf is the options file mariadb-backup --prepare reads from the
// data directory it prepares; it comes with the backup.
const backupCnf = "backup-my.cnf"

// cnfPathOptions are the options that make the server or mariadb-backup
// --prepare open, create or write files where their value points (a
// prepare opens the system tablespace named by innodb_data_file_path and
// applies the redo log to it, wherever it is), or load code from there.
var cnfPathOptions = []string{
	"innodb_data_file_path", "innodb_data_home_dir", "innodb_log_group_home_dir", "innodb_undo_directory",
	"innodb_temp_data_file_path", "innodb_tmpdir", "innodb_log_arch_dir", "innodb_doublewrite_file",
	"aria_log_dir_path", "datadir", "tmpdir", "plugin_dir", "log_bin", "log_bin_index", "log_basename",
	"general_log_file", "slow_query_log_file", "log_error", "pid_file", "socket",
}

// checkBackupCnf refuses a backup-my.cnf that would make mariadb-backup
// --prepare reach outside the data directory: an !include directive, or
// one of cnfPathOptions (or an abbreviation of one, which the option
// parser accepts) whose value — or, for the *_file_path lists, a file in
// it — is absolute or climbs with "..". plugin_dir is refused whatever
// its value: it would load code from the backup.
func checkBackupCnf(b []byte) error {
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		at := fmt.Sprintf("%s line %d", backupCnf, i+1)
		if line[0] == '!' {
			return fmt.Errorf("%s: directive %q refused: the backup's options must not come from elsewhere", at, line)
		}
		key, val, _ := strings.Cut(line, "=")
		key = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(key)), "-", "_")
		for _, p := range []string{"loose_", "enable_", "maximum_"} {
			key = strings.TrimPrefix(key, p)
		}
		val = strings.Trim(strings.TrimSpace(val), `"'`)
		for _, opt := range cnfPathOptions {
			if key == "" || !strings.HasPrefix(opt, key) {
				continue
			}
			if opt == "plugin_dir" {
				return fmt.Errorf("%s: %s refused: a restore loads no plugin from a directory the backup names", at, key)
			}
			paths := []string{val}
			if strings.HasSuffix(opt, "_file_path") {
				paths = nil
				for _, f := range strings.Split(val, ";") {
					name, _, _ := strings.Cut(f, ":")
					paths = append(paths, name)
				}
			}
			for _, p := range paths {
				if p == "" {
					continue
				}
				if strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\`) || len(p) >= 2 && p[1] == ':' ||
					slices.Contains(strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }), "..") {
					return fmt.Errorf("%s: %s=%s refused: it points outside the data directory", at, key, val)
				}
			}
		}
	}
	return nil
}
