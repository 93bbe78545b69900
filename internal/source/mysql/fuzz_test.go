package mysql

import (
	"bytes"
	"io"
	"path"
	"strings"
	"testing"
)

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"mysql://root:pw@127.0.0.1:3306/", "mysql://u@/?socket=/run/mysqld/mysqld.sock", "mariadb://a%20b:c%40d@[::1]/?tls=true&ssl-ca=/ca",
		"mysql://:@:0/?", "mysql://u:p@h/db", "mysql:opaque", "mysql://h/?tls=x&socket=/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseDSN(s)
		if err != nil {
			return
		}
		// The redacted form parses back to the same settings without the
		// password.
		back, err := ParseDSN(c.String())
		if err != nil {
			t.Fatalf("ParseDSN(%q).String() = %q does not parse: %v", s, c.String(), err)
		}
		c.Password = ""
		if back != c {
			t.Fatalf("round trip of %q: %+v, want %+v", s, back, c)
		}
	})
}

func FuzzDumpScanner(f *testing.F) {
	f.Add([]byte(sampleDump))
	f.Add([]byte("-- CHANGE MASTER TO MASTER_LOG_FILE='b.000001', MASTER_LOG_POS=4;\n-- SET GLOBAL gtid_slave_pos='0-1-2';\n-- Dump completed"))
	f.Add([]byte("\r\n\n--\n/*\nx\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		whole := newDumpScanner()
		_, _ = whole.Write(b)
		whole.Finish()
		bits := newDumpScanner()
		for i := 0; i < len(b); i += 3 {
			_, _ = bits.Write(b[i:min(i+3, len(b))])
		}
		bits.Finish()
		if whole.Pos != bits.Pos || whole.GTID != bits.GTID || whole.Completed != bits.Completed {
			t.Fatalf("chunking changes the result: %+v vs %+v", whole, bits)
		}
		if !whole.Pos.IsZero() {
			if _, _, err := ParseBinlogName(whole.Pos.File); err != nil {
				t.Fatalf("position with a bad file name: %v", err)
			}
		}
		if whole.GTID != "" && !validGTID(whole.GTID) {
			t.Fatalf("bad GTID %q", whole.GTID)
		}
	})
}

func FuzzParseBackupPosition(f *testing.F) {
	f.Add("[00] 2026-11-26 11:02:45 MySQL binlog position: filename 'binlog.000001', position '1088', GTID of the last change '0-1-5'")
	f.Add("MySQL binlog position: filename 'b.1', position '4'")
	f.Fuzz(func(t *testing.T, s string) {
		p, g, ok := parseBackupPosition(s)
		if !ok {
			return
		}
		if _, _, err := ParseBinlogName(p.File); err != nil {
			t.Fatalf("bad file name %q accepted", p.File)
		}
		if g != "" && !validGTID(g) {
			t.Fatalf("bad GTID %q", g)
		}
	})
}

func FuzzScanBinlog(f *testing.F) {
	f.Add(binlogBytes(1, 2, 3))
	f.Add(binlogBytes(1, 2, 3)[:30])
	f.Add([]byte{0xfe, 'b', 'i', 'n', 0, 0, 0, 0, 2, 1, 0, 0, 0, 19, 0, 0, 0, 23, 0, 0, 0, 0, 0})
	f.Add([]byte("not a binlog"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, aerr := scanBinlog(bytes.NewReader(b))
		c, cerr := scanBinlog(io.MultiReader(bytes.NewReader(b)))
		if (aerr == nil) != (cerr == nil) || a != c {
			t.Fatalf("seeking and reading disagree: %+v %v / %+v %v", a, aerr, c, cerr)
		}
		if aerr == nil && a.End+a.Trailing != int64(len(b)) {
			t.Fatalf("end %d + trailing %d != %d bytes", a.End, a.Trailing, len(b))
		}
	})
}

func FuzzParseBinlogIndex(f *testing.F) {
	f.Add("binlog.000001 100 1 2;binlog.000002 4 0 0")
	f.Add("")
	f.Add(";")
	f.Fuzz(func(t *testing.T, s string) {
		es, err := parseBinlogIndex(s)
		if err != nil {
			return
		}
		again, err := parseBinlogIndex(formatBinlogIndex(es))
		if err != nil || len(again) != len(es) {
			t.Fatalf("round trip of %q: %v %v", s, again, err)
		}
		for i := range es {
			if es[i] != again[i] {
				t.Fatalf("round trip of %q: %v, want %v", s, again, es)
			}
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"version":1,"flavour":"mariadb","databases":[{"name":"a","file":"mysql/a.sql","binlog_file":"binlog.000001","binlog_pos":4}],"users":"mysql/_users.sql"}`))
	f.Add([]byte(`{"version":1,"physical":true,"file":"mysql/backup.xbstream","binlog_file":"binlog.000002","binlog_pos":9}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		_ = m.Meta().Map()
		for _, d := range m.Databases {
			if !strings.HasPrefix(d.File, "mysql/") || path.Clean(d.File) != d.File || strings.Count(d.File, "/") != 1 {
				t.Fatalf("file %q accepted", d.File)
			}
		}
	})
}

func FuzzParsePosition(f *testing.F) {
	f.Add("binlog.000042:1234")
	f.Add("a.b.1:4")
	f.Add(":")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil {
			return
		}
		if back, err := ParsePosition(p.String()); err != nil || back != p {
			t.Fatalf("round trip of %q: %v %v", s, back, err)
		}
	})
}

// readOptionValue undoes optionValue the way the MySQL/MariaDB option
// file reader does (mysys/my_default.c: the end-of-line comment is cut
// outside quotes, surrounding quotes are removed, escapes are undone).
func readOptionValue(v string) string {
	var quote, escape bool
	var q byte
	end := len(v)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c == '\'' || c == '"') && !escape {
			if !quote {
				quote, q = true, c
			} else if q == c {
				quote = false
			}
		}
		if !quote && c == '#' {
			end = i
			break
		}
		escape = quote && c == '\\' && !escape
	}
	v = strings.TrimSpace(v[:end])
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i != len(v)-1 {
			i++
			switch v[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 's':
				b.WriteByte(' ')
			case '"', '\'', '\\':
				b.WriteByte(v[i])
			default:
				b.WriteByte('\\')
				b.WriteByte(v[i])
			}
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func FuzzOptionValue(f *testing.F) {
	f.Add(secret)
	f.Add(`\`)
	f.Add(`"#'`)
	f.Add("a\nb\\n")
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) {
			return
		}
		if got := readOptionValue(optionValue(s)); got != s {
			t.Fatalf("%q written as %s reads back as %q", s, optionValue(s), got)
		}
	})
}
