package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// snapshotRepo returns a repository holding n snapshots of one small tree
// (one group).
func snapshotRepo(t *testing.T, n int) *repoEnv {
	t.Helper()
	e := initRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	for i := 0; i < n; i++ {
		writeFiles(t, src, map[string]string{"a.txt": strings.Repeat("x", i+1)})
		e.mustRun("backup", src)
	}
	if got := len(e.snapshots()); got != n {
		t.Fatalf("%d snapshots after %d backups", got, n)
	}
	return e
}

// TestCountAndDurationFlagsRangeChecked: every count and duration the
// CLI takes is refused, naming the flag and the value, when negative,
// overflowing or otherwise out of range (finding 4 of issue 14); and a
// refused forget removes nothing.
func TestCountAndDurationFlagsRangeChecked(t *testing.T) {
	e := snapshotRepo(t, 2)
	for _, tc := range []struct {
		flag, value string
		args        []string // the command, with --flag value appended
		want        string   // in the message, besides the flag and value
	}{
		{"--keep-last", "-5", []string{"forget"}, "-1 for all"},
		{"--keep-daily", "-3", []string{"forget"}, "-1 for all"},
		{"--keep-yearly", "99999999999999999999", []string{"forget"}, "out of range"},
		{"--keep-within", "-5d", []string{"forget"}, "negative"},
		{"--keep-within", "5x", []string{"forget"}, "unit"},
		{"--connections", "-1", []string{"snapshots"}, "negative"},
		{"--connections", "100000", []string{"snapshots"}, "at most"},
		{"--retry-attempts", "-1", []string{"snapshots"}, "negative"},
		{"--safety-window", "-1h", []string{"prune"}, "negative"},
		{"--safety-window", "9999999h", []string{"prune"}, "invalid duration"},
		{"--safety-window", "-1s", []string{"forget", "--keep-last", "1", "--prune"}, "negative"},
		{"--max-unused", "NaN", []string{"prune"}, "percentage"},
		{"--max-unused", "-1%", []string{"prune"}, "percentage"},
		{"--read-data-subset", "NaN%", []string{"check"}, "percentage"},
		{"--limit-upload", "NaN", []string{"snapshots"}, "rate"},
		{"--limit-download", "-5M", []string{"snapshots"}, "rate"},
		{"--latest", "-1", []string{"snapshots"}, "negative"},
		{"--pack-size", "0", []string{"init"}, "at least 1"},
		{"--pack-size", "-16", []string{"init"}, "at least 1"},
		{"--pack-size", "100000", []string{"init"}, "at most 512"},
		{"--jobs", "0", []string{"backup", "postgres"}, "at least 1"},
		{"--jobs", "-4", []string{"restore", "mysql", "latest"}, "at least 1"},
		{"--interval", "0s", []string{"pg", "wal-receive"}, "longer than zero"},
		{"--interval", "-1s", []string{"agent"}, "longer than zero"},
		{"--measure-every", "0s", []string{"daemon"}, "longer than zero"},
		{"--max-concurrent", "-1", []string{"serve"}, "negative"},
		{"--idle-timeout", "-1m", []string{"serve"}, "negative"},
	} {
		args := append(append([]string(nil), tc.args...), tc.flag, tc.value)
		res := testutil.Expect(t, e.run(args...), 1)
		for _, w := range []string{tc.flag, tc.value, tc.want} {
			if !strings.Contains(res.Stderr, w) {
				t.Errorf("bunker %s: message does not say %q:\n%s", strings.Join(args, " "), w, res.Stderr)
			}
		}
	}
	// A shorthand is named by its long flag.
	res := testutil.Expect(t, e.run("forget", "-l", "-2"), 1)
	if !strings.Contains(res.Stderr, "--keep-last -2") {
		t.Errorf("forget -l -2: %s", res.Stderr)
	}
	if n := len(e.snapshots()); n != 2 {
		t.Errorf("%d snapshots left after refused commands, want 2", n)
	}
}

// TestForgetKeepWithinHuge: --keep-within longer than a time.Duration
// holds keeps every snapshot. It used to wrap negative and keep none:
// all snapshots were removed.
func TestForgetKeepWithinHuge(t *testing.T) {
	e := snapshotRepo(t, 3)
	for _, within := range []string{"293y", "110000d", "2562048h", "99999999999999999999999y", "200y200y"} {
		res := e.mustRun("forget", "--keep-within", within)
		if n := len(e.snapshots()); n != 3 {
			t.Fatalf("forget --keep-within %s left %d snapshots, want 3:\n%s", within, n, res)
		}
	}
}

// TestForgetRefusesRemovingAll: a policy that would remove every snapshot
// of a group (here a --keep-tag nothing has) is refused and removes
// nothing, unless --unsafe-allow-remove-all says so; snapshots named by
// ID are removed as asked.
func TestForgetRefusesRemovingAll(t *testing.T) {
	e := snapshotRepo(t, 3)
	for _, args := range [][]string{
		{"forget", "--keep-tag", "no-such-tag"},
		{"forget", "--keep-tag", "no-such-tag", "--dry-run"},
		{"forget", "--keep-tag", "no-such-tag", "--prune"},
		{"--json", "forget", "--keep-tag", "no-such-tag"},
	} {
		res := e.expect(1, args...)
		if !strings.Contains(res.Stdout+res.Stderr, "--unsafe-allow-remove-all") || !strings.Contains(res.Stdout+res.Stderr, "nothing was removed") {
			t.Errorf("bunker %s: no word of --unsafe-allow-remove-all:\n%s", strings.Join(args, " "), res)
		}
		if n := len(e.snapshots()); n != 3 {
			t.Fatalf("bunker %s removed snapshots: %d left, want 3", strings.Join(args, " "), n)
		}
	}
	e.mustRun("forget", "--keep-last", "1")
	list := e.snapshots()
	if len(list) != 1 {
		t.Fatalf("forget --keep-last 1 left %d snapshots", len(list))
	}
	// An explicit ID is explicit enough.
	e.mustRun("forget", list[0]["id"].(string))
	if n := len(e.snapshots()); n != 0 {
		t.Fatalf("forget ID left %d snapshots", n)
	}

	e = snapshotRepo(t, 2)
	e.mustRun("forget", "--keep-tag", "no-such-tag", "--unsafe-allow-remove-all")
	if n := len(e.snapshots()); n != 0 {
		t.Fatalf("forget --unsafe-allow-remove-all left %d snapshots", n)
	}
}

// TestRunRetentionLongKeepWithin: a plan's keep_within near the longest
// duration reaches forget rounded up to whole hours, past the longest
// duration; it used to wrap there and the job's retention removed every
// snapshot.
func TestRunRetentionLongKeepWithin(t *testing.T) {
	pe := newPlanEnv(t, `  - name: home
    source: {type: files, paths: ["${SRC}"]}
    schedule: every 1h
    repository: main
    retention: {keep_within: 2562047h47m}
`)
	for i := 0; i < 2; i++ {
		writeFiles(t, pe.src, map[string]string{"c.txt": strings.Repeat("c", i+1)})
		testutil.Expect(t, pe.run("run", "--plan", pe.plan, "home"), 0)
	}
	if n := pe.snapshotsTagged(pe.main, "job=home"); n != 2 {
		t.Errorf("main keeps %d snapshots of home, want 2 (keep_within about 292 years)", n)
	}
}

// TestDamagedKeyObjects: a damaged key object is named and skipped with a
// warning when another key opens the repository, stays a wrong password
// (exit 12) only when well-formed keys were tried, and is its own error
// (exit 1) naming the object when no well-formed key is left (finding 8
// of issue 14). A key with absurd argon2 parameters is refused before any
// derivation.
func TestDamagedKeyObjects(t *testing.T) {
	e := snapshotRepo(t, 1)
	keyDir := filepath.Join(e.repo, "keys")
	goodKeys := listRepoFiles(t, e.repo, "keys")
	if len(goodKeys) != 1 {
		t.Fatalf("%d keys after init", len(goodKeys))
	}
	good, err := os.ReadFile(goodKeys[0])
	must(t, err)
	// Names after any hex name: an old bunker met the good key first.
	plant := map[string][]byte{
		"zz-garbage":   []byte("not a key object at all"),
		"zz-truncated": good[:len(good)*2/3],
		"zz-memory": append(append([]byte(nil), good[:8]...),
			`{"kdf":{"alg":"argon2id","time":100,"memory":4194304,"threads":1,"salt":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"data":""}`...),
	}
	for name, b := range plant {
		must(t, os.WriteFile(filepath.Join(keyDir, name), b, 0o444))
	}

	res := e.mustRun("snapshots")
	for name := range plant {
		if !strings.Contains(res.Stderr, "keys/"+name) || !strings.Contains(res.Stderr, "damaged key object") {
			// Fatal: the steps below try every key, and a bunker that
			// accepted zz-memory would run argon2id over 4 GiB.
			t.Fatalf("no warning naming keys/%s:\n%s", name, res.Stderr)
		}
	}
	res = e.mustRun("key", "list")
	if strings.Count(res.Stdout, "DAMAGED") != len(plant) {
		t.Errorf("key list does not show %d damaged keys:\n%s", len(plant), res.Stdout)
	}

	wrong := newRepoEnv(t, e.repo)
	wrong.env["BUNKER_PASSWORD"] = "not the password"
	res = wrong.expect(12, "snapshots")
	if !strings.Contains(res.Stderr, "wrong password") || !strings.Contains(res.Stderr, "keys/zz-garbage") {
		t.Errorf("wrong password beside damaged keys:\n%s", res.Stderr)
	}

	// The absurd key is refused by name before any derivation (a hint
	// makes it the only key tried).
	res = e.expect(1, "--key-hint", "zz-memory", "snapshots")
	if !strings.Contains(res.Stderr, "keys/zz-memory") || !strings.Contains(res.Stderr, "memory") || strings.Contains(res.Stderr, "wrong password") {
		t.Errorf("hint on the absurd key:\n%s", res.Stderr)
	}

	// Only damaged keys left: not a wrong password.
	e.mustRun("key", "remove", "zz-memory")
	if _, err := os.Stat(filepath.Join(keyDir, "zz-memory")); !os.IsNotExist(err) {
		t.Errorf("key remove left the damaged key: %v", err)
	}
	must(t, os.Chmod(goodKeys[0], 0o644))
	must(t, os.Remove(goodKeys[0]))
	for _, env := range []*repoEnv{e, wrong} {
		res = env.expect(1, "snapshots")
		if strings.Contains(res.Stderr, "wrong password") || !strings.Contains(res.Stderr, "damaged key object") ||
			!strings.Contains(res.Stderr, "keys/zz-garbage") || !strings.Contains(res.Stderr, "keys/zz-truncated") {
			t.Errorf("only damaged keys:\n%s", res.Stderr)
		}
	}
}

// TestForgetKeepWithinPeriods: restic's --keep-within-daily (and the other
// periods) keep the newest snapshot of each period within the duration;
// their values take the retention grammar and say which flag is wrong.
func TestForgetKeepWithinPeriods(t *testing.T) {
	e := snapshotRepo(t, 3)
	res := e.expect(1, "forget", "--keep-within-weekly", "6m")
	if !strings.Contains(res.Stderr, "--keep-within-weekly") {
		t.Errorf("a lone m is not refused naming the flag:\n%s", res)
	}
	// Three snapshots taken moments apart: one day, one snapshot kept.
	e.mustRun("forget", "--keep-within-daily", "7d")
	if list := e.snapshots(); len(list) != 1 {
		t.Fatalf("--keep-within-daily 7d left %d snapshots, want 1", len(list))
	}
}
