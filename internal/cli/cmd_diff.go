package cli

import (
	"context"
	"fmt"
	"path"
	"slices"

	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/spf13/cobra"
)

func (a *App) diffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff SNAPSHOT1 SNAPSHOT2",
		Short: "Show what changed between two snapshots",
		Args:  cobra.ExactArgs(2),
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
			s1, err := snapshot.Find(all, args[0], snapshot.Filter{})
			if err != nil {
				return err
			}
			s2, err := snapshot.Find(all, args[1], snapshot.Filter{})
			if err != nil {
				return err
			}
			var added, removed, changed int
			emit := func(mark, p string) {
				switch mark {
				case "+":
					added++
				case "-":
					removed++
				case "M":
					changed++
				}
				if a.g.json {
					a.out.jsonLine(map[string]any{"message_type": "change", "path": p, "modifier": mark})
				} else {
					fmt.Fprintf(a.Stdout, "%s    %s\n", mark, p)
				}
			}
			if err := diffTrees(ctx, r, &s1.Tree, &s2.Tree, "/", emit); err != nil {
				return err
			}
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "statistics", "added": added, "removed": removed, "changed": changed})
			} else {
				fmt.Fprintf(a.Stdout, "\n%d added, %d removed, %d changed\n", added, removed, changed)
			}
			return nil
		},
	}
}

func diffTrees(ctx context.Context, r *repository.Repository, a, b *tree.ID, p string, emit func(string, string)) error {
	if a != nil && b != nil && *a == *b {
		return nil
	}
	var ta, tb *tree.Tree
	var err error
	if a != nil {
		if ta, err = walker.LoadTree(ctx, r, *a); err != nil {
			return err
		}
	} else {
		ta = &tree.Tree{}
	}
	if b != nil {
		if tb, err = walker.LoadTree(ctx, r, *b); err != nil {
			return err
		}
	} else {
		tb = &tree.Tree{}
	}
	i, j := 0, 0
	for i < len(ta.Nodes) || j < len(tb.Nodes) {
		var na, nb *tree.Node
		switch {
		case i >= len(ta.Nodes):
			nb = tb.Nodes[j]
			j++
		case j >= len(tb.Nodes):
			na = ta.Nodes[i]
			i++
		case ta.Nodes[i].Name < tb.Nodes[j].Name:
			na = ta.Nodes[i]
			i++
		case ta.Nodes[i].Name > tb.Nodes[j].Name:
			nb = tb.Nodes[j]
			j++
		default:
			na, nb = ta.Nodes[i], tb.Nodes[j]
			i++
			j++
		}
		switch {
		case na == nil:
			np := path.Join(p, string(nb.Name))
			emit("+", np)
			if nb.Type == tree.TypeDir {
				if err := diffTrees(ctx, r, nil, nb.Subtree, np, emit); err != nil {
					return err
				}
			}
		case nb == nil:
			np := path.Join(p, string(na.Name))
			emit("-", np)
			if na.Type == tree.TypeDir {
				if err := diffTrees(ctx, r, na.Subtree, nil, np, emit); err != nil {
					return err
				}
			}
		default:
			np := path.Join(p, string(na.Name))
			if na.Type != nb.Type {
				emit("T", np)
				continue
			}
			if na.Type == tree.TypeDir {
				if err := diffTrees(ctx, r, na.Subtree, nb.Subtree, np, emit); err != nil {
					return err
				}
				continue
			}
			if !slices.Equal(na.Content, nb.Content) || na.LinkTarget != nb.LinkTarget || na.Mode != nb.Mode || na.UID != nb.UID || na.GID != nb.GID {
				emit("M", np)
			}
		}
	}
	return nil
}
