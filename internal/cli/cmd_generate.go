package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// generateCommand writes documentation generated from the commands
// themselves: man pages for packages, Markdown for the web site. It is
// hidden: packagers run it, users read its output.
func (a *App) generateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "generate",
		Short:  "Generate man pages or Markdown reference pages from the commands",
		Hidden: true,
		Args:   cobra.NoArgs,
	}
	gen := func(use, short string, write func(root *cobra.Command, dir string) error) *cobra.Command {
		return &cobra.Command{
			Use:   use + " DIR",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				dir := args[0]
				if dir == "" {
					return errors.New("no directory given")
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				root := cmd.Root()
				// No "Auto generated … on DATE" footer: the pages of one
				// version are the same whenever they are built.
				disableAutoGenTag(root)
				if err := write(root, dir); err != nil {
					return fmt.Errorf("generate %s in %s: %w", use, dir, err)
				}
				a.out.textf("%s pages written to %s", use, dir)
				return nil
			},
		}
	}
	cmd.AddCommand(
		gen("man", "Write one man page (section 1) per command into DIR", func(root *cobra.Command, dir string) error {
			return doc.GenManTree(root, &doc.GenManHeader{Title: "BUNKER", Section: "1", Source: "Bunker " + Version, Manual: "Bunker Manual"}, dir)
		}),
		gen("markdown", "Write one Markdown page per command into DIR", func(root *cobra.Command, dir string) error {
			return doc.GenMarkdownTree(root, dir)
		}),
	)
	return cmd
}

func disableAutoGenTag(c *cobra.Command) {
	c.DisableAutoGenTag = true
	for _, sub := range c.Commands() {
		disableAutoGenTag(sub)
	}
}
