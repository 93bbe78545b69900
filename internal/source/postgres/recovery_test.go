package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/source"
)

func TestRecoveryTargetSettings(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890000000, time.FixedZone("CET", 3600))
	for _, c := range []struct {
		name   string
		target RecoveryTarget
		want   []string
		any    bool
		err    string
	}{
		{"none", RecoveryTarget{Action: "promote"}, nil, false, ""},
		{"time", RecoveryTarget{Time: at, Action: "promote"}, []string{"recovery_target_time = '2026-03-04 04:06:07.89+00'",
			"recovery_target_action = 'promote'", "recovery_target_inclusive = true"}, true, ""},
		{"lsn exclusive", RecoveryTarget{LSN: "0/3000060", Exclusive: true, Action: "pause"}, []string{"recovery_target_lsn = '0/3000060'",
			"recovery_target_action = 'pause'", "recovery_target_inclusive = false"}, true, ""},
		{"xid", RecoveryTarget{XID: "1234", Action: "shutdown"}, []string{"recovery_target_xid = '1234'",
			"recovery_target_action = 'shutdown'", "recovery_target_inclusive = true"}, true, ""},
		{"name quoted", RecoveryTarget{Name: "before 'the' upgrade", Action: "promote"}, []string{"recovery_target_name = 'before ''the'' upgrade'",
			"recovery_target_action = 'promote'", "recovery_target_inclusive = true"}, true, ""},
		{"latest", RecoveryTarget{Latest: true, Action: "promote"}, nil, true, ""},
		{"two targets", RecoveryTarget{LSN: "0/1", XID: "1", Action: "promote"}, nil, false, "give at most one of"},
		{"bad action", RecoveryTarget{Action: "explode"}, nil, false, `--target-action "explode"`},
		{"bad lsn", RecoveryTarget{LSN: "3000060", Action: "promote"}, nil, false, "--target-lsn"},
		{"bad xid", RecoveryTarget{XID: "12; DROP", Action: "promote"}, nil, false, `--target-xid "12; DROP" is not a transaction ID`},
		{"newline in name", RecoveryTarget{Name: "x'\nrestore_command = 'evil", Action: "promote"}, []string{"recovery_target_name = 'x''\nrestore_command = ''evil'",
			"recovery_target_action = 'promote'", "recovery_target_inclusive = true"}, true, ""},
	} {
		got, any, err := c.target.Settings()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want error %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || any != c.any || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q %v %v\nwant %q %v", c.name, got, any, err, c.want, c.any)
		}
	}
	if got := ImmediateSettings("pause"); !reflect.DeepEqual(got, []string{"recovery_target = 'immediate'", "recovery_target_action = 'pause'"}) {
		t.Errorf("immediate: %q", got)
	}
}

func TestRestoreCommandQuoting(t *testing.T) {
	got := RestoreCommand("/srv/it's here")
	want := `restore_command = 'test -f ''/srv/it''\''''s here/%f'' && cp ''/srv/it''\''''s here/%f'' %p'`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestVerifyArgs(t *testing.T) {
	for _, c := range []struct {
		method, walDir string
		want           []string
	}{
		{"fetch", "/w", []string{"--quiet", "/d"}},
		{"none", "/w", []string{"--quiet", "/d", "--wal-directory=/w"}},
		{"none", "", []string{"--quiet", "/d", "--no-parse-wal"}},
	} {
		if got := VerifyArgs("/d", c.method, c.walDir); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %q: %q, want %q", c.method, c.walDir, got, c.want)
		}
	}
}

func TestCheckDataDir(t *testing.T) {
	dir := t.TempDir()
	if got, err := CheckDataDir(filepath.Join(dir, "new")); err != nil || got != filepath.Join(dir, "new") {
		t.Fatalf("%q %v", got, err)
	}
	if _, err := CheckDataDir(dir); err != nil {
		t.Fatalf("empty: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckDataDir(dir); err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("not empty: %v", err)
	}
}

func TestWriteRecoveryConf(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, AutoConf), []byte("# mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteRecoveryConf(dir, []string{"restore_command = 'x'", "recovery_target_lsn = '0/1'"}, -1, -1); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, AutoConf))
	if err != nil || !strings.HasPrefix(string(b), "# mine\n# Recovery settings written by bunker") || !strings.HasSuffix(string(b), "\nrestore_command = 'x'\nrecovery_target_lsn = '0/1'\n") {
		t.Fatalf("%q %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, RecoverySignal)); err != nil || fi.Size() != 0 {
		t.Fatalf("recovery.signal: %v", err)
	}
}

// TestWriteRecoveryConfRefusesLinks: a restored data directory is
// untrusted; neither file is written through a planted link, and neither
// is written when the other is one.
func TestWriteRecoveryConfRefusesLinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links are a Unix matter")
	}
	for _, name := range []string{AutoConf, RecoverySignal, "both"} {
		dir := t.TempDir()
		pgdata := filepath.Join(dir, "pgdata")
		outside := filepath.Join(dir, "precious")
		if err := os.MkdirAll(pgdata, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(outside, []byte("precious\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		links := []string{name}
		if name == "both" {
			links = []string{AutoConf, RecoverySignal}
		}
		for _, l := range links {
			if err := os.Symlink(outside, filepath.Join(pgdata, l)); err != nil {
				t.Fatal(err)
			}
		}
		err := WriteRecoveryConf(pgdata, []string{"restore_command = 'x'"}, -1, -1)
		if err == nil || !strings.Contains(err.Error(), "refusing to write through it") {
			t.Errorf("%s: %v", name, err)
		}
		if b, _ := os.ReadFile(outside); string(b) != "precious\n" {
			t.Errorf("%s: wrote through the link: %q", name, b)
		}
		if name == RecoverySignal {
			if b, _ := os.ReadFile(filepath.Join(pgdata, AutoConf)); len(b) != 0 {
				t.Errorf("postgresql.auto.conf written before recovery.signal was checked: %q", b)
			}
		}
	}
}

func TestRestoreOwner(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no owners")
	}
	dir := t.TempDir()
	// No PG_VERSION: no owner to copy.
	if uid, gid, err := RestoreOwner(dir, ""); err != nil || uid != -1 || gid != -1 {
		t.Fatalf("%d:%d %v", uid, gid, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if uid, _, err := RestoreOwner(dir, ""); err != nil || uid != os.Getuid() {
		t.Fatalf("%d %v", uid, err)
	}
	// A planted link is refused, not followed.
	link := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(link, "PG_VERSION")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := RestoreOwner(link, ""); err == nil || !strings.Contains(err.Error(), "not a plain data directory") {
		t.Fatalf("link: %v", err)
	}
	if _, _, err := RestoreOwner(dir, "no-such-user-here"); err == nil || !strings.Contains(err.Error(), "--owner") {
		t.Fatalf("unknown user: %v", err)
	}
}

func TestPhysicalRestore(t *testing.T) {
	ctx := context.Background()
	all := []source.SnapshotInfo{walSnap("a", "7", "000000010000000000000002", "000000010000000000000003")}
	trees := func(id string) source.Tree {
		return fileTree{"wal/000000010000000000000002": "2", "wal/000000010000000000000003": "3"}
	}
	newRestore := func(t *testing.T, method string, target RecoveryTarget) (*PhysicalRestore, *[]string) {
		var verified []string
		dir := t.TempDir()
		return &PhysicalRestore{PGData: filepath.Join(dir, "pgdata"), Target: target,
			Manifest: &PhysicalManifestData{SystemIdentifier: "7", StartWALFile: "000000010000000000000002", WALMethod: method},
			RestoreBase: func(ctx context.Context, dir string) error {
				return os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600)
			},
			Archive: func(ctx context.Context) ([]source.SnapshotInfo, Trees, error) { return all, trees, nil },
			Verify:  func(ctx context.Context, args []string) error { verified = args; return nil },
		}, &verified
	}

	// As it was, WAL included: no recovery.
	pr, verified := newRestore(t, "fetch", RecoveryTarget{Action: "promote"})
	res, err := pr.Restore(ctx)
	if err != nil || res.Replay || !res.Verified || res.WALDir != "" || !reflect.DeepEqual(*verified, []string{"--quiet", pr.PGData}) {
		t.Fatalf("%+v %v %q", res, err, *verified)
	}
	if _, err := os.Stat(filepath.Join(pr.PGData, RecoverySignal)); !os.IsNotExist(err) {
		t.Fatalf("recovery.signal without a target: %v", err)
	}
	if fi, err := os.Stat(pr.PGData); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("pgdata mode: %v %v", fi, err)
	}

	// WAL left to the archive: recovery to the consistent point.
	pr, verified = newRestore(t, "none", RecoveryTarget{Action: "pause"})
	res, err = pr.Restore(ctx)
	if err != nil || !res.Replay || res.WALFiles != 2 || res.WALDir != pr.PGData+".wal" ||
		!reflect.DeepEqual(res.Recovery, []string{"recovery_target = 'immediate'", "recovery_target_action = 'pause'"}) ||
		!reflect.DeepEqual(*verified, []string{"--quiet", pr.PGData, "--wal-directory=" + res.WALDir}) {
		t.Fatalf("%+v %v %q", res, err, *verified)
	}
	conf, _ := os.ReadFile(filepath.Join(pr.PGData, AutoConf))
	if !strings.Contains(string(conf), "restore_command = 'test -f ''"+res.WALDir+"/%f''") || !strings.Contains(string(conf), "recovery_target = 'immediate'") {
		t.Fatalf("auto.conf %s", conf)
	}
	if b, _ := os.ReadFile(filepath.Join(res.WALDir, "000000010000000000000003")); string(b) != "3" {
		t.Fatalf("WAL %q", b)
	}

	// A target, no verification, WAL where asked.
	pr, verified = newRestore(t, "fetch", RecoveryTarget{LSN: "0/3000060", Action: "promote"})
	pr.NoVerify = true
	pr.WALDir = filepath.Join(filepath.Dir(pr.PGData), "w")
	res, err = pr.Restore(ctx)
	if err != nil || !res.Replay || res.Verified || *verified != nil || res.WALDir != pr.WALDir || res.Recovery[0] != "recovery_target_lsn = '0/3000060'" {
		t.Fatalf("%+v %v", res, err)
	}

	// A failed verification fails the restore before recovery is set up.
	pr, _ = newRestore(t, "fetch", RecoveryTarget{Latest: true, Action: "promote"})
	pr.Verify = func(ctx context.Context, args []string) error { return errors.New("checksum mismatch") }
	if _, err := pr.Restore(ctx); err == nil || !strings.Contains(err.Error(), "does not verify (--no-verify skips this): checksum mismatch") {
		t.Fatalf("%v", err)
	}
	if _, err := os.Stat(filepath.Join(pr.PGData, RecoverySignal)); !os.IsNotExist(err) {
		t.Fatalf("recovery.signal after a failed verification: %v", err)
	}

	// A gap in an archive the backup relies on.
	pr, _ = newRestore(t, "none", RecoveryTarget{Action: "promote"})
	pr.Manifest.StartWALFile = "000000010000000000000001"
	if _, err := pr.Restore(ctx); err == nil || !strings.Contains(err.Error(), "000000010000000000000001") {
		t.Fatalf("gap: %v", err)
	}
}
