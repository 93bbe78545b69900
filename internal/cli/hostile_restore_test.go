package cli_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/app/streamtree"
	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/storage/local"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// plantSnapshot commits a snapshot whose tree build writes, with the
// engine's own writer: what anyone holding the repository password (a
// backup host, a hostile database server feeding a source) can store.
func plantSnapshot(t *testing.T, e *repoEnv, meta map[string]string, build func(ctx context.Context, sink source.Sink) error) {
	t.Helper()
	ctx := context.Background()
	be, err := local.New(e.repo)
	must(t, err)
	r, err := repository.Open(ctx, be, testPassword, "")
	must(t, err)
	defer r.Close()
	must(t, r.LoadIndex(ctx, false))
	cfg := r.Config()
	arch, err := archiver.New(r, archiver.Options{Chunker: cfg.Chunker.Params()})
	must(t, err)
	now := time.Now()
	w := streamtree.NewWriter(arch, now, "attacker")
	stop := arch.StartStreams(ctx)
	err = build(ctx, w)
	var root archiver.ID
	if err == nil {
		root, err = w.Root(ctx)
	}
	stop()
	must(t, err)
	must(t, r.Flush(ctx))
	sn := snapshot.New([]string{"/planted"}, nil, "attacker", now)
	sn.Metadata = meta
	sn.Tree = root
	_, err = snapshot.Save(ctx, r, sn)
	must(t, err)
}

func plantFile(ctx context.Context, sink source.Sink, p, body string) error {
	return source.WriteBytes(ctx, sink, p, []byte(body), &source.Meta{Mode: 0o600, ModTime: time.Now()})
}

// plantPhysicalPG commits a PostgreSQL base backup laid out as backup
// postgres --physical stores one (pgdata/ and postgres/physical.json),
// with extra entries added by plant (and a regular PG_VERSION unless
// plant makes one).
func plantPhysicalPG(t *testing.T, e *repoEnv, plant func(ctx context.Context, sink source.Sink) error) {
	t.Helper()
	manifest, err := json.Marshal(map[string]any{
		"format": "bunker-postgres-physical/1", "server_version": "16.4", "system_identifier": "7300000000000000099",
		"timeline": 1, "start_lsn": "0/2000028", "start_wal_file": "000000010000000000000002", "wal_method": "fetch",
	})
	must(t, err)
	plantSnapshot(t, e, map[string]string{"source": "postgres", "type": "physical", "system_identifier": "7300000000000000099",
		"start_wal_file": "000000010000000000000002", "wal_method": "fetch"},
		func(ctx context.Context, sink source.Sink) error {
			if err := sink.Mkdir("pgdata", &source.Meta{Mode: 0o700, ModTime: time.Now()}); err != nil {
				return err
			}
			if err := plant(ctx, sink); err != nil {
				return err
			}
			if err := plantFile(ctx, sink, "pgdata/PG_VERSION", "16\n"); err != nil && !strings.Contains(err.Error(), "PG_VERSION") {
				return err
			}
			return plantFile(ctx, sink, "postgres/physical.json", string(manifest))
		})
}

// TestRestorePostgresPhysicalNeverWritesThroughPlantedLinks (issue 14,
// finding 2): a base backup whose postgresql.auto.conf, recovery.signal
// or PG_VERSION is a symbolic link out of the data directory, restored
// with a recovery target. The restore must fail naming the file, and the
// files the links point to must stay as they were (not appended to, not
// truncated, not created).
func TestRestorePostgresPhysicalNeverWritesThroughPlantedLinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links in restores are a Unix matter")
	}
	cases := []struct {
		name  string
		links map[string]string // in pgdata -> file in outside
		regs  map[string]string // regular files planted in pgdata
		want  string            // in the error
	}{
		{"auto.conf", map[string]string{"postgresql.auto.conf": "conf"}, nil, "postgresql.auto.conf: is a symbolic link"},
		{"recovery.signal", map[string]string{"recovery.signal": "signal"}, map[string]string{"postgresql.auto.conf": "# mine\n"}, "recovery.signal: is a symbolic link"},
		{"both", map[string]string{"postgresql.auto.conf": "conf", "recovery.signal": "signal"}, nil, "postgresql.auto.conf: is a symbolic link"},
		{"PG_VERSION", map[string]string{"PG_VERSION": "conf"}, nil, "PG_VERSION: is a symbolic link"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := initRepo(t)
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			writeFile(t, filepath.Join(outside, "conf"), []byte("precious\n"))
			plantPhysicalPG(t, e, func(ctx context.Context, sink source.Sink) error {
				for name, target := range tc.links {
					if err := sink.Symlink("pgdata/"+name, filepath.Join(outside, target), &source.Meta{Mode: 0o777}); err != nil {
						return err
					}
				}
				for name, body := range tc.regs {
					if err := plantFile(ctx, sink, "pgdata/"+name, body); err != nil {
						return err
					}
				}
				return nil
			})
			pgdata := filepath.Join(base, "pgdata")
			res := e.run("restore", "postgres", "latest", "--physical", "--pgdata", pgdata,
				"--target-time", "2030-01-01T00:00:00Z", "--no-verify", "--wal-dir", filepath.Join(base, "wal"))
			if b, err := os.ReadFile(filepath.Join(outside, "conf")); err != nil || string(b) != "precious\n" {
				t.Errorf("the link target outside --pgdata was changed: %q, %v", b, err)
			}
			if _, err := os.Lstat(filepath.Join(outside, "signal")); err == nil {
				t.Error("recovery.signal was created through the link, outside --pgdata")
			}
			if body, ok := tc.regs["postgresql.auto.conf"]; ok {
				// Nothing is written before both files are checked.
				if b, _ := os.ReadFile(filepath.Join(pgdata, "postgresql.auto.conf")); string(b) != body {
					t.Errorf("postgresql.auto.conf was written before the restore gave up: %q", b)
				}
			}
			if res.Code == 0 {
				t.Errorf("restore succeeded:\n%s%s", res.Stdout, res.Stderr)
			} else if !strings.Contains(res.Stderr, tc.want) || !strings.Contains(res.Stderr, pgdata) {
				t.Errorf("error does not say %q in %s:\n%s", tc.want, pgdata, res.Stderr)
			}
		})
	}
}

// xbChunk is one xbstream chunk, framed as mariadb-backup writes it:
// magic, flags, type, path length and path, then (all but an end chunk)
// payload length, offset, CRC-32 of the payload and the payload.
func xbChunk(typ byte, name string, offset uint64, payload []byte) []byte {
	b := append([]byte("XBSTCK01"), 0, typ)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(name)))
	b = append(b, name...)
	if typ == 'E' {
		return b
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(payload)))
	b = binary.LittleEndian.AppendUint64(b, offset)
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(payload))
	return append(b, payload...)
}

// xbFile is the chunks of one whole file: its content, then its end.
func xbFile(name, body string) []byte {
	return append(xbChunk('P', name, 0, []byte(body)), xbChunk('E', name, 0, nil)...)
}

// plantPhysicalMySQL commits a MariaDB physical backup laid out as backup
// mysql --physical stores one, whose xbstream is stream.
func plantPhysicalMySQL(t *testing.T, e *repoEnv, stream []byte) {
	t.Helper()
	manifest, err := json.Marshal(map[string]any{"version": 1, "flavour": "mariadb", "server_version": "11.4.2-MariaDB",
		"server": "db1:3306", "physical": true, "file": "mysql/backup.xbstream", "binlog_file": "binlog.000002", "binlog_pos": 9})
	must(t, err)
	plantSnapshot(t, e, map[string]string{"source": "mysql", "flavour": "mariadb", "physical": "true"},
		func(ctx context.Context, sink source.Sink) error {
			if err := plantFile(ctx, sink, "mysql/backup.json", string(manifest)); err != nil {
				return err
			}
			return plantFile(ctx, sink, "mysql/backup.xbstream", string(stream))
		})
}

// TestRestoreMySQLPhysicalStaysInDatadir (issue 14, restore confinement):
// a physical backup whose xbstream names a file outside the data
// directory — through "..", by an absolute path — or whose backup-my.cnf
// points mariadb-backup --prepare at a system tablespace outside it (a
// prepare applies the redo log to that file: a live server's ibdata1),
// restored with --physical. mbstream extracts whatever names it is given;
// the restore must refuse the entry or option by name before mbstream or
// the prepare acts on it, and nothing outside --datadir may change.
func TestRestoreMySQLPhysicalStaysInDatadir(t *testing.T) {
	testsrv.Tool(t, "mbstream", "")
	cases := []struct {
		name string
		// evil is the entry name or backup-my.cnf line, given the
		// test's directory; cnf says which.
		evil func(base string) string
		cnf  bool
	}{
		{"dotdot", func(string) string { return "../../escaped/evil" }, false},
		{"dotdot-inside", func(string) string { return "db/../../../escaped/evil" }, false},
		{"absolute", func(base string) string { return filepath.Join(base, "escaped", "evil") }, false},
		{"cnf-data-file", func(base string) string {
			return "innodb_data_file_path=" + filepath.Join(base, "live", "ibdata1") + ":12M:autoextend"
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := initRepo(t)
			base := t.TempDir()
			writeFile(t, filepath.Join(base, "live", "ibdata1"), []byte("live tablespace\n"))
			evil, cnf := tc.evil(base), "[mysqld]\ninnodb_page_size=16384\n"
			var stream []byte
			if tc.cnf {
				stream = append(stream, xbFile("backup-my.cnf", cnf+evil+"\n")...)
			} else {
				stream = append(stream, xbFile("backup-my.cnf", cnf)...)
				stream = append(stream, xbFile(evil, "pwned\n")...)
			}
			stream = append(stream, xbFile("ibdata1", "data")...)
			plantPhysicalMySQL(t, e, stream)
			datadir := filepath.Join(base, "a", "data")
			must(t, os.Mkdir(filepath.Join(base, "a"), 0o700))
			res := e.run("restore", "mysql", "latest", "--physical", "--datadir", datadir)
			// Nothing exists in base but the data directory, its parent
			// and the live file, unchanged.
			err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				switch rel, _ := filepath.Rel(base, p); {
				case rel == "." || rel == "a" || rel == "live" || rel == filepath.Join("live", "ibdata1"):
				case rel == filepath.Join("a", "data") || strings.HasPrefix(rel, filepath.Join("a", "data")+string(filepath.Separator)):
				default:
					t.Errorf("the restore wrote %s, outside --datadir", p)
				}
				return nil
			})
			must(t, err)
			if b, err := os.ReadFile(filepath.Join(base, "live", "ibdata1")); err != nil || string(b) != "live tablespace\n" {
				t.Errorf("the file outside --datadir was changed: %q, %v", b, err)
			}
			if res.Code == 0 {
				t.Fatalf("restore succeeded:\n%s%s", res.Stdout, res.Stderr)
			}
			want := strconv.Quote(evil)
			if tc.cnf {
				want = evil + " refused"
			}
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("error does not say %s:\n%s", want, res.Stderr)
			}
		})
	}
}

// TestRestoreMongoToDirNeverWritesThroughPlantedLinks (issue 14, restore
// confinement): restore mongodb --to-dir DIR into a directory where a
// link already stands in the way of the backup's files — DIR/shop to a
// directory outside, DIR/backup.json to a file outside. The restore must
// fail naming the link, and nothing may be created or changed through
// it.
func TestRestoreMongoToDirNeverWritesThroughPlantedLinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links in restores are a Unix matter")
	}
	cases := []struct{ name, link, target string }{
		{"directory", "shop", "outdir"},
		{"file", "backup.json", "precious"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := initRepo(t)
			plantSnapshot(t, e, map[string]string{"source": "mongodb"}, func(ctx context.Context, sink source.Sink) error {
				for p, body := range map[string]string{
					"mongodb/backup.json":               `{"version":1}`,
					"mongodb/shop/orders.bson":          "\x05\x00\x00\x00\x00",
					"mongodb/shop/orders.metadata.json": `{"indexes":[]}`,
				} {
					if err := plantFile(ctx, sink, p, body); err != nil {
						return err
					}
				}
				return nil
			})
			base := t.TempDir()
			outside := filepath.Join(base, "outside")
			must(t, os.MkdirAll(filepath.Join(outside, "outdir"), 0o700))
			writeFile(t, filepath.Join(outside, "precious"), []byte("precious\n"))
			dir := filepath.Join(base, "dump")
			must(t, os.Mkdir(dir, 0o700))
			must(t, os.Symlink(filepath.Join(outside, tc.target), filepath.Join(dir, tc.link)))

			res := e.run("restore", "mongodb", "latest", "--to-dir", dir)
			if ents, err := os.ReadDir(filepath.Join(outside, "outdir")); err != nil || len(ents) > 0 {
				t.Errorf("the restore wrote through DIR/shop into the directory outside: %v %v", ents, err)
			}
			if b, err := os.ReadFile(filepath.Join(outside, "precious")); err != nil || string(b) != "precious\n" {
				t.Errorf("the file outside was changed: %q, %v", b, err)
			}
			if res.Code == 0 {
				t.Fatalf("restore succeeded:\n%s%s", res.Stdout, res.Stderr)
			}
			if want := filepath.Join(dir, tc.link); !strings.Contains(res.Stderr, want) || !strings.Contains(res.Stderr, "symbolic link") {
				t.Errorf("error does not say %s is a symbolic link:\n%s", want, res.Stderr)
			}
		})
	}
}
