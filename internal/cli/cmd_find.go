package cli

import (
	"fmt"
	"path"
	"strings"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/spf13/cobra"
)

func (a *App) findCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var ignoreCase bool
	var snaps []string
	cmd := &cobra.Command{
		Use:   "find PATTERN...",
		Short: "Find files by name pattern in snapshots",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := a.openRepoIndexed(ctx)
			if err != nil {
				return err
			}
			all, _, err := snapshot.LoadAll(ctx, r)
			if err != nil {
				return err
			}
			list := ff.filter().Apply(all)
			if len(snaps) > 0 {
				list = nil
				for _, ref := range snaps {
					sn, err := snapshot.Find(all, ref, ff.filter())
					if err != nil {
						return err
					}
					list = append(list, sn)
				}
			}
			pats := args
			if ignoreCase {
				pats = nil
				for _, p := range args {
					pats = append(pats, strings.ToLower(p))
				}
			}
			for _, p := range pats {
				if _, err := path.Match(p, ""); err != nil {
					return fmt.Errorf("bad pattern %q: %w", p, err)
				}
			}
			found := 0
			for _, sn := range list {
				err := walker.Walk(ctx, r, sn.Tree, "/", func(p string, n *tree.Node) error {
					name := string(n.Name)
					if ignoreCase {
						name = strings.ToLower(name)
					}
					for _, pat := range pats {
						m1, _ := path.Match(pat, name)
						m2, _ := path.Match(pat, p)
						if m1 || m2 {
							found++
							if a.g.json {
								a.out.jsonLine(map[string]any{"message_type": "match", "snapshot": sn.ID.String(), "node": toNodeJSON(p, n)})
							} else {
								fmt.Fprintf(a.Stdout, "%s  %s  %s  %d\n", sn.ShortID(), sn.Time.Local().Format("2006-01-02 15:04:05"), p, n.Size)
							}
							break
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			if !a.g.json && found == 0 {
				fmt.Fprintln(a.Stderr, "no matches")
			}
			return nil
		},
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().BoolVarP(&ignoreCase, "ignore-case", "i", false, "match case-insensitively")
	cmd.Flags().StringArrayVarP(&snaps, "snapshot", "s", nil, "search only this snapshot (repeatable)")
	return cmd
}
