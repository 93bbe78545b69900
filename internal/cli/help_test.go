package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpFiles: every help file is some command's (a misnamed file
// would silently leave its command without help), and every shared
// passage it names exists.
func TestHelpFiles(t *testing.T) {
	root := (&App{}).rootCommand()
	commands := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		commands[helpPath(c)] = c
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	names := helpFileNames()
	if len(names) < 40 {
		t.Fatalf("%d help files: the embedded help is missing", len(names))
	}
	for _, name := range names {
		c, ok := commands[name]
		if !ok {
			t.Errorf("%s: no command has this path", name)
			continue
		}
		if c.Long == "" || strings.Contains(c.Long, "{{") {
			t.Errorf("%s: long help %q: not attached or a passage is missing", name, c.Long)
		}
	}
	for _, want := range []string{"Exit codes:", "BUNKER_PASSWORD_FILE"} {
		if !strings.Contains(root.Long, want) {
			t.Errorf("bunker --help lacks %q", want)
		}
	}
	if r := commands["help/restore/mysql.txt"]; r == nil || !strings.Contains(r.Long, "--defaults-extra-file") {
		t.Errorf("restore mysql's help lacks the shared connection passage")
	}
}
