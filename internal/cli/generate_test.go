package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/testutil"
)

// TestGenerateMan: "generate man DIR" writes a page per command, each
// with a NAME section naming that command and saying what it does, and
// none for hidden commands; "generate markdown DIR" writes the same set
// as Markdown.
func TestGenerateMan(t *testing.T) {
	noEnv := func(string) string { return "" }
	dir := filepath.Join(t.TempDir(), "man")
	testutil.Expect(t, runApp(t, strings.NewReader(""), noEnv, "generate", "man", dir), 0)
	nameRe := regexp.MustCompile(`(?m)^\.SH NAME\n(\S+) \\?- (.+)$`)
	for page, short := range map[string]string{
		"bunker.1":                 "Deduplicating, compressed, encrypted backups",
		"bunker-backup.1":          "Back up files, standard input or a command's output",
		"bunker-restore.1":         "",
		"bunker-snapshots.1":       "",
		"bunker-check.1":           "",
		"bunker-forget.1":          "",
		"bunker-prune.1":           "",
		"bunker-copy.1":            "",
		"bunker-run.1":             "",
		"bunker-drill.1":           "",
		"bunker-daemon.1":          "",
		"bunker-backup-postgres.1": "",
		"bunker-key-add.1":         "",
		"bunker-completion-bash.1": "",
	} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Errorf("no page: %v", err)
			continue
		}
		m := nameRe.FindStringSubmatch(string(b))
		if m == nil {
			t.Errorf("%s has no NAME section:\n%.400s", page, b)
			continue
		}
		if want := strings.TrimSuffix(page, ".1"); m[1] != want {
			t.Errorf("%s names %q, want %q", page, m[1], want)
		}
		if got := strings.TrimSpace(strings.ReplaceAll(m[2], `\-`, "-")); got == "" || short != "" && got != short {
			t.Errorf("%s describes itself as %q, want %q", page, got, short)
		}
		if !strings.Contains(string(b), `.TH "BUNKER" "1"`) {
			t.Errorf("%s has no BUNKER(1) title:\n%.200s", page, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bunker-generate.1")); err == nil {
		t.Error("the hidden generate command has a man page")
	}

	md := filepath.Join(t.TempDir(), "md")
	testutil.Expect(t, runApp(t, strings.NewReader(""), noEnv, "generate", "markdown", md), 0)
	for _, page := range []string{"bunker.md", "bunker_backup.md", "bunker_restore.md", "bunker_snapshots.md"} {
		b, err := os.ReadFile(filepath.Join(md, page))
		if err != nil {
			t.Errorf("no Markdown page: %v", err)
		} else if !strings.HasPrefix(string(b), "## "+strings.ReplaceAll(strings.TrimSuffix(page, ".md"), "_", " ")) {
			t.Errorf("%s starts %.80q", page, b)
		}
	}
}
