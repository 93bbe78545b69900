package mysql

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const secret = `s3cr3t "pa ss" #x \ 'y'`

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn  string
		want Conn
	}{
		{"mysql://root:pw@db.example:3307/", Conn{User: "root", Password: "pw", Host: "db.example", Port: 3307}},
		{"mysql://root@127.0.0.1", Conn{User: "root", Host: "127.0.0.1"}},
		{"mariadb://u:p%40ss%20w@[::1]:3306/?tls=skip-verify", Conn{User: "u", Password: "p@ss w", Host: "::1", Port: 3306, TLS: "skip-verify"}},
		{"mysql://backup@/?socket=/run/mysqld/mysqld.sock", Conn{User: "backup", Socket: "/run/mysqld/mysqld.sock"}},
		{"mysql://u@h/?ssl-ca=/ca.pem&ssl-cert=/c.pem&ssl-key=/k.pem", Conn{User: "u", Host: "h", SSLCA: "/ca.pem", SSLCert: "/c.pem", SSLKey: "/k.pem"}},
		{"mysql://", Conn{}},
	} {
		got, err := ParseDSN(tc.dsn)
		if err != nil {
			t.Errorf("ParseDSN(%q): %v", tc.dsn, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseDSN(%q) = %+v, want %+v", tc.dsn, got, tc.want)
		}
		if strings.Contains(got.String(), got.Password) && got.Password != "" {
			t.Errorf("String() of %q shows the password: %s", tc.dsn, got)
		}
	}
	for _, bad := range []string{
		"postgres://u:SECRETPW@h/",
		"mysql://u:SECRETPW@h:99999/",
		"mysql://u:SECRETPW@h:port/",
		"mysql://u:SECRETPW@h/appdb",
		"mysql://u:SECRETPW@h/?sockett=/x",
		"mysql://u:SECRETPW@h/?tls=maybe",
		"mysql://u:SECRETPW@h/?socket=relative.sock",
		"mysql://u:SECRETPW@h/?ssl-cert=/c.pem",
		"mysql://u:SECRETPW@h/?socket=/a&socket=/b",
		"mysql://u:SECRETPW@h\x7f/",
		"mysql://u:SECRETPW@h/%zz",
	} {
		_, err := ParseDSN(bad)
		if err == nil {
			t.Errorf("ParseDSN(%q) accepted it", bad)
			continue
		}
		if strings.Contains(err.Error(), "SECRETPW") {
			t.Errorf("ParseDSN(%q) error shows the password: %v", bad, err)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	c := Conn{Host: "db", User: "u"}.WithDefaults()
	if c.Port != DefaultPort || c.Server() != "db:3306" {
		t.Errorf("defaults: %+v, server %s", c, c.Server())
	}
	if c := (Conn{Socket: "/x.sock"}).WithDefaults(); c.Server() != "/x.sock" || c.User == "" {
		t.Errorf("socket defaults: %+v", c)
	}
	if c := (Conn{SSLCA: "/ca"}).WithDefaults(); c.TLS != "true" {
		t.Errorf("ssl-ca does not imply tls=true: %+v", c)
	}
}

// TestOptionsFile checks the option file through MariaDB's own reader
// (my_print_defaults): awkward passwords come out as they went in.
func TestOptionsFile(t *testing.T) {
	printer, err := exec.LookPath("my_print_defaults")
	if err != nil {
		t.Skip("my_print_defaults (Debian package mariadb-server) is not installed")
	}
	for _, pw := range []string{secret, `ends with \`, `"`, `'`, "tab\there", "new\nline", " lead and trail ", `#`, `a\nb`, `\\`, "ünï😀"} {
		c := Conn{User: "bob", Password: pw, Host: "127.0.0.1", Port: 3306}
		f, err := c.writeOptionsFile(t.TempDir(), true)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("option file mode %v, want 0600", fi.Mode().Perm())
		}
		out, err := exec.Command(printer, "--defaults-file="+f, "client").Output()
		if err != nil {
			t.Fatalf("my_print_defaults: %v", err)
		}
		want := "--user=bob\n--password=" + pw + "\n--host=127.0.0.1\n--port=3306\n--protocol=TCP\n"
		if string(out) != want {
			t.Errorf("password %q read back as\n%s\nwant\n%s", pw, out, want)
		}
	}
	if _, err := (Conn{Password: "a\x00b"}).optionsFile(true); err == nil {
		t.Error("a NUL in the password was accepted")
	}
}

func TestToolCommand(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "mariadb-dump")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Source{conn: Conn{User: "root", Password: secret, Socket: "/x.sock"}, opts: Options{ToolDir: dir, TempDir: t.TempDir()}}
	cmd, done, err := s.tool(toolDump, "--databases", "--", "app")
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Path != tool {
		t.Errorf("tool %s, want %s", cmd.Path, tool)
	}
	if !strings.HasPrefix(cmd.Args[0], "--defaults-extra-file=") {
		t.Errorf("first option %q is not --defaults-extra-file", cmd.Args[0])
	}
	for _, a := range append(cmd.Args, cmd.Env...) {
		if strings.Contains(a, "s3cr3t") {
			t.Errorf("the password is on the command line: %q", cmd.Args)
		}
	}
	f := strings.TrimPrefix(cmd.Args[0], "--defaults-extra-file=")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("s3cr3t")) {
		t.Errorf("the option file lacks the password:\n%s", b)
	}
	done()
	if _, err := os.Stat(f); !os.IsNotExist(err) {
		t.Errorf("option file %s still there after the run (%v)", f, err)
	}
	// A missing tool says which and where.
	s.opts.ToolDir = t.TempDir()
	_, _, err = s.tool(toolClient)
	if err == nil || !strings.Contains(err.Error(), "mariadb or mysql not found in "+s.opts.ToolDir) {
		t.Errorf("missing tool: %v", err)
	}
}

const sampleDump = `/*M!999999\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database: app
/*!40101 SET NAMES utf8mb4 */;
-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;

-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000001', MASTER_LOG_POS=1088;

--
-- Current Database: ` + "`app`" + `
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ ` + "`app`" + `;
INSERT INTO t VALUES (1,'-- CHANGE MASTER TO MASTER_LOG_FILE=\'binlog.000009\', MASTER_LOG_POS=4;\n');
CREATE PROCEDURE p()
BEGIN
-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000666', MASTER_LOG_POS=4;
END ;;
-- The deferred gtid setting for slave corresponding to the master-data CHANGE-MASTER follows

-- SET GLOBAL gtid_slave_pos='0-1-5';
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on 2026-11-26 11:02:38
`

func TestDumpScanner(t *testing.T) {
	for _, chunk := range []int{1, 7, 64, 1 << 20} {
		sc := newDumpScanner()
		data := []byte(sampleDump)
		for len(data) > 0 {
			n := min(chunk, len(data))
			if _, err := sc.Write(data[:n]); err != nil {
				t.Fatal(err)
			}
			data = data[n:]
		}
		sc.Finish()
		if sc.Pos != (BinlogPos{File: "binlog.000001", Pos: 1088}) || sc.GTID != "0-1-5" || !sc.Completed {
			t.Errorf("chunks of %d: pos %v gtid %q completed %v", chunk, sc.Pos, sc.GTID, sc.Completed)
		}
	}
	// A dump cut short has no trailer.
	sc := newDumpScanner()
	_, _ = sc.Write([]byte(sampleDump[:len(sampleDump)/2]))
	sc.Finish()
	if sc.Completed {
		t.Error("a truncated dump counts as completed")
	}
	// Long lines are fine.
	sc = newDumpScanner()
	_, _ = sc.Write([]byte("-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000002', MASTER_LOG_POS=4;\nINSERT " + strings.Repeat("x", 10000) + "\n-- Dump completed\n"))
	sc.Finish()
	if sc.Pos.File != "binlog.000002" || !sc.Completed {
		t.Errorf("after a long line: %+v", sc)
	}
}

func TestParseChangeMaster(t *testing.T) {
	for line, want := range map[string]BinlogPos{
		"-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000001', MASTER_LOG_POS=1088;":            {"binlog.000001", 1088},
		"CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000123', MASTER_LOG_POS=4;":               {"mysql-bin.000123", 4},
		"-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000002', SOURCE_LOG_POS=157;": {"binlog.000002", 157},
		"-- change master to master_log_pos=9, master_log_file='b.000003';":                    {"b.000003", 9},
	} {
		got, ok := parseChangeMaster(line)
		if !ok || got != want {
			t.Errorf("%q: %v %v, want %v", line, got, ok, want)
		}
	}
	for _, line := range []string{
		"-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;",
		"-- CHANGE MASTER TO MASTER_LOG_FILE='../etc/passwd', MASTER_LOG_POS=4;",
		"-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000001', MASTER_LOG_POS=x;",
		"-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000001' MASTER_LOG_POS=4;",
		"-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000001', MASTER_LOG_POS=4",
	} {
		if p, ok := parseChangeMaster(line); ok {
			t.Errorf("%q parsed as %v", line, p)
		}
	}
}

func TestParseBackupPosition(t *testing.T) {
	p, g, ok := parseBackupPosition("[00] 2026-11-26 11:02:45 MySQL binlog position: filename 'binlog.000001', position '1088', GTID of the last change '0-1-5'")
	if !ok || p != (BinlogPos{"binlog.000001", 1088}) || g != "0-1-5" {
		t.Errorf("got %v %q %v", p, g, ok)
	}
	p, g, ok = parseBackupPosition("MySQL binlog position: filename 'mysql-bin.000007', position '157'")
	if !ok || p != (BinlogPos{"mysql-bin.000007", 157}) || g != "" {
		t.Errorf("got %v %q %v", p, g, ok)
	}
	for _, bad := range []string{"MySQL binlog position: filename '', position '1'", "MySQL binlog position: filename 'b.1', position 'x'", "nothing"} {
		if p, _, ok := parseBackupPosition(bad); ok {
			t.Errorf("%q parsed as %v", bad, p)
		}
	}
	sc := newBackupLogScanner()
	_, _ = sc.Write([]byte("[00] x\n[00] 2026 MySQL binlog position: filename 'binlog.000002', position '77', GTID of the last change ''\n[00] 2026-11-26 11:02:45 completed OK!\n"))
	if sc.Pos != (BinlogPos{"binlog.000002", 77}) || !sc.Completed {
		t.Errorf("scanner: %+v", sc)
	}
}

func TestBinlogNames(t *testing.T) {
	for name, want := range map[string]uint64{"binlog.000001": 1, "mysql-bin.1234567": 1234567, "a.b.000010": 10} {
		if _, n, err := ParseBinlogName(name); err != nil || n != want {
			t.Errorf("%s: %d %v", name, n, err)
		}
	}
	for _, bad := range []string{"", "binlog", "binlog.", ".000001", "-x.000001", "../x.000001", "a/b.000001", "b.00x1", "b. 1", "b.99999999999999999999999"} {
		if _, _, err := ParseBinlogName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got := nextBinlogName("binlog.000009"); got != "binlog.000010" {
		t.Errorf("next: %s", got)
	}
	if p, err := ParsePosition("binlog.000042:1234"); err != nil || p != (BinlogPos{"binlog.000042", 1234}) {
		t.Errorf("ParsePosition: %v %v", p, err)
	}
	for _, bad := range []string{"binlog.000042", "binlog.000042:", "binlog.000042:x", ":4", "binlog.000042:2"} {
		if _, err := ParsePosition(bad); err == nil {
			t.Errorf("ParsePosition(%q) accepted", bad)
		}
	}
}

// event builds a binlog event with the given time and body size.
func event(pos int64, ts uint32, body int) []byte {
	b := make([]byte, binlogEventHeader+body)
	binary.LittleEndian.PutUint32(b[0:], ts)
	b[4] = 2
	binary.LittleEndian.PutUint32(b[5:], 1)
	binary.LittleEndian.PutUint32(b[9:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[13:], uint32(pos+int64(len(b))))
	return b
}

func binlogBytes(times ...uint32) []byte {
	b := slices.Clone(binlogMagic)
	for i, ts := range times {
		b = append(b, event(int64(len(b)), ts, 10+i)...)
	}
	return b
}

func TestScanBinlog(t *testing.T) {
	b := binlogBytes(100, 0, 105, 110)
	for _, r := range []func([]byte) io.Reader{
		func(b []byte) io.Reader { return bytes.NewReader(b) },
		func(b []byte) io.Reader { return io.MultiReader(bytes.NewBuffer(b)) }, // cannot seek
	} {
		sc, err := scanBinlog(r(b))
		if err != nil || sc.End != int64(len(b)) || sc.Events != 4 || sc.First != 100 || sc.Last != 110 || sc.Trailing != 0 {
			t.Errorf("whole file: %+v %v", sc, err)
		}
		sc, err = scanBinlog(r(b[:len(b)-5]))
		if err != nil || sc.Events != 3 || sc.Last != 105 || sc.End+sc.Trailing != int64(len(b)-5) {
			t.Errorf("cut inside an event: %+v %v", sc, err)
		}
		sc, err = scanBinlog(r(b[:len(b)-20-13+5]))
		if err != nil || sc.Trailing == 0 {
			t.Errorf("cut inside a header: %+v %v", sc, err)
		}
	}
	bad := slices.Clone(b)
	binary.LittleEndian.PutUint32(bad[4+9:], 5)
	if _, err := scanBinlog(bytes.NewReader(bad)); err == nil {
		t.Error("event size 5 accepted")
	}
	bad = slices.Clone(b)
	binary.LittleEndian.PutUint32(bad[4+13:], 7)
	if _, err := scanBinlog(bytes.NewReader(bad)); err == nil {
		t.Error("wrong next position accepted")
	}
	if _, err := scanBinlog(strings.NewReader("SELECT 1;")); err == nil {
		t.Error("SQL accepted as a binlog")
	}
}

func TestBinlogIndex(t *testing.T) {
	es := []binlogIndexEntry{{"binlog.000001", 100, 1, 2}, {"binlog.000002", 4, 0, 0}}
	got, err := parseBinlogIndex(formatBinlogIndex(es))
	if err != nil || !slices.Equal(got, es) {
		t.Errorf("round trip: %v %v", got, err)
	}
	for _, bad := range []string{"binlog.000001 1 2", "x 1 2 3", "binlog.000001 -1 2 3", "binlog.000001 a 2 3"} {
		if _, err := parseBinlogIndex(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	p := Push{Files: []PushFile{{Name: "binlog.000001", Size: 10, First: time.Unix(5, 0), Last: time.Unix(6, 0)}, {Name: "binlog.000002", Size: 7, Partial: true}},
		Until: time.Unix(100, 5)}
	md := pushMeta(p).Map()
	if md["partial"] != "binlog.000002" || md["binlog_files"] != "binlog.000001" || md["until"] == "" {
		t.Errorf("metadata %v", md)
	}
	am, err := ParseArchiveMeta(md)
	files := am.Files
	if err != nil || len(files) != 2 || !files[0].Complete || files[1].Complete || files[0].First.Unix() != 5 || files[1].Size != 7 {
		t.Errorf("ArchivedFiles: %+v %v", files, err)
	}
}

func TestDumpFileName(t *testing.T) {
	for db, want := range map[string]string{
		"app":       "mysql/app.sql",
		"-weird db": "mysql/-weird db.sql",
		"_users":    "mysql/%5Fusers.sql",
		"a/b.c":     "mysql/a%2Fb.c.sql",
		".hidden":   "mysql/%2Ehidden.sql",
		"50%":       "mysql/50%25.sql",
		"ünï":       "mysql/ünï.sql",
		"a\x00\xff": "mysql/a%00%FF.sql",
	} {
		if got := DumpFileName(db); got != want {
			t.Errorf("DumpFileName(%q) = %q, want %q", db, got, want)
		}
	}
}

func TestManifest(t *testing.T) {
	m := &Manifest{Version: 1, Flavour: MariaDB, ServerVersion: "10.11", Databases: []Dump{
		{Name: "b,c", File: "mysql/b,c.sql", BinlogFile: "binlog.000002", BinlogPos: 4},
		{Name: "a", File: "mysql/a.sql", BinlogFile: "binlog.000001", BinlogPos: 900},
	}, BinlogFile: "binlog.000001", BinlogPos: 900}
	md := m.Meta().Map()
	if md["databases"] != "b%2Cc,a" || md["physical"] != "false" || md["binlog_pos"] != "900" {
		t.Errorf("metadata %v", md)
	}
	for _, bad := range []string{
		`{}`, `{"version":2}`, `{"version":1,"databases":[{"name":"a","file":"../x"}]}`,
		`{"version":1,"databases":[{"name":"a","file":"mysql/a.sql"},{"name":"a","file":"mysql/b.sql"}]}`,
		`{"version":1,"databases":[{"name":"a","file":"mysql/a.sql","binlog_file":"x"}]}`,
		`{"version":1,"physical":true,"file":"/etc/passwd"}`, `{"version":1,"users":"mysql/x/y"}`,
	} {
		if _, err := ParseManifest([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestBestCopies(t *testing.T) {
	got := BestCopies([]BinlogFile{
		{Name: "binlog.000010", Size: 5, Snapshot: "a"},
		{Name: "binlog.000009", Size: 50, Complete: true, Snapshot: "a"},
		{Name: "binlog.000010", Size: 9, Snapshot: "b"},
		{Name: "binlog.000009", Size: 70, Snapshot: "b"},
		{Name: "binlog.000010", Size: 9, Snapshot: "c"},
	})
	if len(got) != 2 || got[0].Name != "binlog.000009" || got[0].Snapshot != "a" || got[1].Snapshot != "c" {
		t.Errorf("got %+v", got)
	}
}

func TestFirstToArchive(t *testing.T) {
	server := []string{"binlog.000003", "binlog.000004", "binlog.000005"}
	for _, tc := range []struct {
		archived []BinlogFile
		first    string
		warn     bool
		err      bool
	}{
		{nil, "binlog.000003", false, false},
		{[]BinlogFile{{Name: "binlog.000003", Complete: true}, {Name: "binlog.000004"}}, "binlog.000004", false, false},
		{[]BinlogFile{{Name: "binlog.000001", Complete: true}}, "binlog.000003", true, false},
		{[]BinlogFile{{Name: "binlog.000009", Complete: true}}, "", false, true},
		{[]BinlogFile{{Name: "other.000001", Complete: true}}, "", false, true},
	} {
		first, warn, err := firstToArchive(server, tc.archived)
		if first != tc.first || (warn != "") != tc.warn || (err != nil) != tc.err {
			t.Errorf("%v: %q %q %v", tc.archived, first, warn, err)
		}
	}
}

func TestPlanReplay(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(1_800_000_000+s, 0).UTC() }
	files := []BinlogFile{
		{Name: "binlog.000001", Size: 1000, Complete: true, First: at(0), Last: at(10)},
		{Name: "binlog.000002", Size: 1000, Complete: true, First: at(10), Last: at(20)},
		{Name: "binlog.000003", Size: 500, First: at(20), Last: at(30)},
	}
	dumps := []Dump{
		{Name: "a", BinlogFile: "binlog.000001", BinlogPos: 500, Started: at(5)},
		{Name: "b", BinlogFile: "binlog.000002", BinlogPos: 100, Started: at(12)},
	}
	arch := &BinlogArchive{Files: files, Until: at(31)}
	names := func(p *replayPlan) (out []string) {
		for _, f := range p.files {
			out = append(out, f.Name)
		}
		return out
	}
	for _, tc := range []struct {
		target Target
		want   []string
		err    string
	}{
		{Target{Time: at(15)}, []string{"binlog.000001", "binlog.000002"}, ""},
		{Target{Time: at(25)}, []string{"binlog.000001", "binlog.000002", "binlog.000003"}, ""},
		{Target{Time: at(31)}, []string{"binlog.000001", "binlog.000002", "binlog.000003"}, ""},
		{Target{Time: at(40)}, nil, "ends at"},
		{Target{Time: at(3)}, nil, "before the backup of \"a\""},
		{Target{Position: BinlogPos{"binlog.000002", 700}}, []string{"binlog.000001", "binlog.000002"}, ""},
		{Target{Position: BinlogPos{"binlog.000003", 600}}, nil, "500 bytes of binlog.000003"},
		{Target{Position: BinlogPos{"binlog.000004", 4}}, nil, "ends with binlog.000003"},
		{Target{Position: BinlogPos{"binlog.000002", 50}}, nil, "before the backup of \"b\""},
		{Target{Position: BinlogPos{"other.000002", 50}}, nil, "another binary log"},
	} {
		p, err := planReplay(dumps, tc.target, arch)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want one with %q", tc.target, err, tc.err)
			}
		case err != nil:
			t.Errorf("%v: %v", tc.target, err)
		case !slices.Equal(names(p), tc.want):
			t.Errorf("%v: files %v, want %v", tc.target, names(p), tc.want)
		}
	}
	// Without until, the last event decides.
	if _, err := planReplay(dumps, Target{Time: at(29)}, &BinlogArchive{Files: files}); err != nil {
		t.Errorf("covered by a later event: %v", err)
	}
	if _, err := planReplay(dumps, Target{Time: at(30)}, &BinlogArchive{Files: files}); err == nil {
		t.Error("a target in the second of the last event is not known to be covered")
	}
	// A gap.
	gap := &BinlogArchive{Files: []BinlogFile{files[0], files[2]}, Until: at(40)}
	if _, err := planReplay(dumps[:1], Target{Time: at(25)}, gap); err == nil || !strings.Contains(err.Error(), "binlog.000002 is missing") {
		t.Errorf("gap: %v", err)
	}
	// The start is not archived.
	late := &BinlogArchive{Files: files[1:], Until: at(40)}
	if _, err := planReplay(dumps, Target{Time: at(25)}, late); err == nil || !strings.Contains(err.Error(), "binlog.000001, where the backup starts") {
		t.Errorf("start missing: %v", err)
	}
	// A dump without a position.
	if _, err := planReplay([]Dump{{Name: "x"}}, Target{Time: at(25)}, arch); err == nil {
		t.Error("a dump without a position was accepted")
	}
	if got := (&BinlogArchive{Files: []BinlogFile{files[0], files[1], {Name: "binlog.000007"}}}).describe(); got != "binlog.000001–000002, binlog.000007" {
		t.Errorf("describe: %s", got)
	}
}

func TestReplayArgs(t *testing.T) {
	files := []BinlogFile{{Name: "binlog.000001"}, {Name: "binlog.000002"}, {Name: "binlog.000003"}}
	d := Dump{Name: "app", BinlogFile: "binlog.000002", BinlogPos: 77}
	tm := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("X", 3600))
	got := replayArgs("/d", files, d, Target{Time: tm})
	want := []string{"--no-defaults", "--database=app", "--start-position=77", "--stop-datetime=2026-01-02 02:04:06", "/d/binlog.000002", "/d/binlog.000003"}
	if !slices.Equal(got, want) {
		t.Errorf("time: %q", got)
	}
	got = replayArgs("/d", files[:2], d, Target{Position: BinlogPos{"binlog.000002", 900}})
	want = []string{"--no-defaults", "--database=app", "--start-position=77", "--stop-position=900", "/d/binlog.000002"}
	if !slices.Equal(got, want) {
		t.Errorf("position: %q", got)
	}
}

func TestArchiverPush(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	full := binlogBytes(100, 101)
	write("binlog.000001", full)
	write("binlog.000002", binlogBytes(102, 103)[:len(full)-3]) // being written
	var pushes []Push
	now := time.Unix(1000, 0)
	o := &ArchiveOptions{SpoolDir: dir, Push: func(ctx context.Context, p Push) error { pushes = append(pushes, p); return nil },
		Now: func() time.Time { return now }}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	a := &archiver{o: o, dir: dir, partial: map[string]int64{}}
	if err := a.push(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if len(pushes) != 1 || len(pushes[0].Files) != 2 || pushes[0].Files[0].Partial || !pushes[0].Files[1].Partial {
		t.Fatalf("pushes %+v", pushes)
	}
	if f := pushes[0].Files[1]; f.Size != 4+int64(binlogEventHeader+10) || f.First.Unix() != 102 {
		t.Errorf("partial file %+v: want its first event only", f)
	}
	if _, err := os.Stat(filepath.Join(dir, "binlog.000001")); !os.IsNotExist(err) {
		t.Error("the pushed complete file is still in the spool")
	}
	rc, err := pushes[0].Files[1].Open()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	_ = rc.Close()
	if int64(len(b)) != pushes[0].Files[1].Size {
		t.Errorf("Open read %d bytes, want %d", len(b), pushes[0].Files[1].Size)
	}
	// Nothing grew: no push, until a heartbeat is due and until moved.
	if err := a.push(context.Background(), false); err != nil || len(pushes) != 1 {
		t.Errorf("push without news: %v, %d pushes", err, len(pushes))
	}
	a.until = now
	now = now.Add(2 * time.Minute)
	if err := a.push(context.Background(), false); err != nil || len(pushes) != 2 || !pushes[1].Until.Equal(a.until) {
		t.Errorf("heartbeat: %v, %+v", err, pushes)
	}
	// A complete file that ends inside an event is an error.
	write("binlog.000003", binlogBytes(104))
	if err := a.push(context.Background(), false); err == nil {
		t.Error("a cut complete file was pushed")
	}
}

func TestVersionAtLeast(t *testing.T) {
	for v, want := range map[string]bool{"8.0.26": true, "8.0.25-log": false, "8.4.0": true, "5.7.44": false, "10.11.19-MariaDB": true, "": false} {
		if got := versionAtLeast(v, 8, 0, 26); got != want {
			t.Errorf("%q: %v", v, got)
		}
	}
}

func TestExpireBinlogs(t *testing.T) {
	f := func(name string, size int64, complete bool) BinlogFile {
		return BinlogFile{Name: name, Size: size, Complete: complete}
	}
	snaps := []ArchiveSnapshot{
		{ID: "a", Files: []BinlogFile{f("binlog.000001", 100, true), f("binlog.000002", 10, false)}},
		{ID: "b", Files: []BinlogFile{f("binlog.000002", 20, false)}, Until: time.Unix(10, 0)},
		{ID: "c", Files: []BinlogFile{f("binlog.000002", 30, true), f("binlog.000003", 5, false)}},
		{ID: "d", Files: []BinlogFile{f("binlog.000003", 5, false)}, Until: time.Unix(20, 0)},
		{ID: "e", Files: []BinlogFile{f("binlog.000003", 4, false)}, Until: time.Unix(15, 0)},
	}
	// d's copy of 000003 wins the tie with c's (later); d has the latest
	// until; a holds only what the oldest backup does not need.
	if got := ExpireBinlogs(snaps, "binlog.000002"); !slices.Equal(got, []string{"a", "b", "e"}) {
		t.Errorf("expire from 000002: %v", got)
	}
	if got := ExpireBinlogs(snaps, "binlog.000001"); !slices.Equal(got, []string{"b", "e"}) {
		t.Errorf("expire from 000001: %v", got)
	}
	if got := ExpireBinlogs(snaps, ""); got != nil {
		t.Errorf("without a backup: %v", got)
	}
}
