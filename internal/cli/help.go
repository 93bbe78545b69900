package cli

import (
	"embed"
	"io/fs"
	"path"
	"strings"

	"github.com/spf13/cobra"
)

// The long help of the commands is prose, kept out of the code as git
// keeps its manual pages: help/<command path>.txt is the --help text of
// that command ("bunker restore postgres" is help/restore/postgres.txt,
// the root's is help/bunker.txt). A line {{NAME}} stands for the text
// of help/_NAME.txt, a passage several commands share.
//
//go:embed all:help
var helpFiles embed.FS

// helpPath is the file holding the long help of cmd.
func helpPath(cmd *cobra.Command) string {
	p := strings.Fields(cmd.CommandPath())[1:]
	if len(p) == 0 {
		return "help/bunker.txt"
	}
	return "help/" + strings.Join(p, "/") + ".txt"
}

// attachHelp sets the long help of cmd and every command below it from
// their help files.
func attachHelp(cmd *cobra.Command) {
	if b, err := helpFiles.ReadFile(helpPath(cmd)); err == nil {
		cmd.Long = expandHelp(strings.TrimRight(string(b), "\n"))
	}
	for _, c := range cmd.Commands() {
		attachHelp(c)
	}
}

// expandHelp replaces each {{NAME}} line of text with the shared passage
// help/_NAME.txt.
func expandHelp(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		name, ok := strings.CutPrefix(l, "{{")
		if name, ok2 := strings.CutSuffix(name, "}}"); ok && ok2 {
			if b, err := helpFiles.ReadFile("help/_" + name + ".txt"); err == nil {
				lines[i] = strings.TrimRight(string(b), "\n")
			}
		}
	}
	return strings.Join(lines, "\n")
}

// helpFileNames lists every help file that is not a shared passage.
func helpFileNames() []string {
	var names []string
	_ = fs.WalkDir(helpFiles, "help", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(path.Base(p), "_") {
			names = append(names, p)
		}
		return nil
	})
	return names
}
