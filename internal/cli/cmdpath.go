package cli

import "github.com/spf13/cobra"

// CommandPath is the path below "bunker" of the command that args run
// ("pg wal-push"), or "" when they name none. The tests use it to find
// the rows of docs/JSON.md that a run's JSON lines must match.
func CommandPath(args []string) string {
	root := (&App{Getenv: func(string) string { return "" }}).rootCommand()
	cmd, _, err := root.Find(args)
	if err != nil || cmd == root {
		return ""
	}
	return cmd.CommandPath()[len(root.Name())+1:]
}

// CommandPaths lists the path of every command that runs something (not
// the groups), for the tests' check that each printed JSON lines the
// table lists.
func CommandPaths() []string {
	root := (&App{Getenv: func(string) string { return "" }}).rootCommand()
	var out []string
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c != root && c.Runnable() {
			out = append(out, c.CommandPath()[len(root.Name())+1:])
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return out
}
