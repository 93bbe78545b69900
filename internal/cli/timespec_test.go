package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// TestKeepWithinGrammar: --keep-within takes restic's values with
// restic's meaning, reads 1h30m as 90 minutes (never 30 months and an
// hour: 21,601 hours), and refuses a lone m with a hint (issue 16).
func TestKeepWithinGrammar(t *testing.T) {
	e := snapshotRepo(t, 2)
	for within, want := range map[string]string{
		"1h30m":    "all within 1h30m0s",
		"90min":    "all within 1h30m0s",
		"6mo":      "all within 4320h0m0s",
		"1y5m7d2h": "all within 12530h0m0s", // 365+150+7 days and 2 hours
		"2w":       "all within 336h0m0s",
	} {
		res := e.mustRun("forget", "--keep-within", within, "--dry-run")
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("forget --keep-within %s: policy is not %q:\n%s", within, want, res)
		}
	}
	for within, want := range map[string]string{
		"6m":      "write 6min for minutes or 6mo for months",
		"7d30m":   "write 30min for minutes or 30mo for months",
		"1y5m30s": "ambiguous",
		"30s1m":   "ambiguous",
		"1h1d":    "largest first",
	} {
		res := testutil.Expect(t, e.run("forget", "--keep-within", within, "--dry-run"), 1)
		if !strings.Contains(res.Stderr, "--keep-within") || !strings.Contains(res.Stderr, want) {
			t.Errorf("forget --keep-within %s: message does not say %q:\n%s", within, want, res)
		}
	}
	if n := len(e.snapshots()); n != 2 {
		t.Errorf("%d snapshots left, want 2", n)
	}
}

// TestDurationFlagsGrammar: duration flags take the same grammar as plans
// (days, weeks), and what it refuses they refuse, naming the flag.
func TestDurationFlagsGrammar(t *testing.T) {
	e := snapshotRepo(t, 1)
	e.mustRun("forget", "--keep-last", "1", "--prune", "--safety-window", "1d")
	for value, want := range map[string]string{"1h1d": "largest first", "5x": "unknown unit", "1y5m30s": "ambiguous"} {
		res := testutil.Expect(t, e.run("prune", "--safety-window", value), 1)
		if !strings.Contains(res.Stderr, "--safety-window") || !strings.Contains(res.Stderr, want) {
			t.Errorf("prune --safety-window %s: message does not say %q:\n%s", value, want, res)
		}
	}
}

// TestTimeFlagsGrammar: every flag naming a moment takes PostgreSQL's and
// MySQL's own timestamps and the README's example (issue 16); what it
// refuses, it refuses naming the flag and the accepted forms. The
// commands fail later (no such backup, not a versioned store): the test
// is about the flag's value only.
func TestTimeFlagsGrammar(t *testing.T) {
	e := snapshotRepo(t, 1)
	pgdata := filepath.Join(t.TempDir(), "pgdata")
	for _, tc := range []struct {
		flag string
		args []string
	}{
		{"--target-time", []string{"restore", "postgres", "latest", "--physical", "--pgdata", pgdata}},
		{"--target-time", []string{"restore", "mysql", "latest"}},
		{"--repo-as-of", []string{"snapshots"}},
		{"--to", []string{"repair", "rollback"}},
	} {
		for _, value := range []string{"2026-11-26 09:41:00+00", "2026-12-07 00:07:21.92293+00", "2026-12-07 00:07:21.922930", "2026-11-26T09:41:00Z", "2026-11-26"} {
			args := append(append([]string(nil), tc.args...), tc.flag, value)
			res := e.run(args...)
			if strings.Contains(res.Stderr, "not a time") {
				t.Errorf("bunker %s refused the time:\n%s", strings.Join(args, " "), res)
			}
		}
		args := append(append([]string(nil), tc.args...), tc.flag, "26/11/2026 09:41")
		res := testutil.Expect(t, e.run(args...), 1)
		for _, w := range []string{tc.flag, `"26/11/2026 09:41" is not a time`, "PostgreSQL", "MySQL"} {
			if !strings.Contains(res.Stderr, w) {
				t.Errorf("bunker %s: message does not say %q:\n%s", strings.Join(args, " "), w, res)
			}
		}
	}
}
