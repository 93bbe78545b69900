package cli

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/spf13/cobra"
)

type nodeJSON struct {
	Path       string      `json:"path"`
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Size       uint64      `json:"size"`
	Mode       fs.FileMode `json:"mode"`
	Permission string      `json:"permissions"`
	MTime      string      `json:"mtime"`
	UID        uint32      `json:"uid"`
	GID        uint32      `json:"gid"`
	User       string      `json:"user,omitempty"`
	Group      string      `json:"group,omitempty"`
	LinkTarget string      `json:"link_target,omitempty"`
}

func toNodeJSON(p string, n *tree.Node) nodeJSON {
	return nodeJSON{Path: p, Name: string(n.Name), Type: string(n.Type), Size: n.Size, Mode: fs.FileMode(n.Mode), Permission: fs.FileMode(n.Mode).String(),
		MTime: n.ModTime.Format("2006-01-02T15:04:05.999999999Z07:00"), UID: n.UID, GID: n.GID, User: n.User, Group: n.Group, LinkTarget: string(n.LinkTarget)}
}

func (a *App) lsCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var long, recursive bool
	cmd := &cobra.Command{
		Use:               "ls SNAPSHOT [PATH]",
		Short:             "List files in a snapshot",
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: a.completeSnapshots(1),
		RunE: a.refRun(func(ctx context.Context, c *app.App, repo app.Repo, args []string) error {
			ref, sub := splitSnapshotPath(args[0])
			if len(args) == 2 {
				sub = args[1]
			}
			_, err := c.List(ctx, app.ListRequest{Repo: repo, Snapshot: ref, Filter: ff.filter(), Path: sub, Recursive: recursive,
				Found: a.printLsSnapshot, Node: func(p string, n *tree.Node) { a.printLsNode(p, n, long) }})
			return err
		}),
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().BoolVarP(&long, "long", "l", false, "long listing")
	cmd.Flags().BoolVar(&recursive, "recursive", true, "list subdirectories too")
	return cmd
}

// printLsSnapshot prints the snapshot ls lists.
func (a *App) printLsSnapshot(sn *snapshot.Snapshot) {
	a.out.result(map[string]any{"message_type": "snapshot", "id": sn.ID.String(), "time": sn.Time, "paths": sn.Paths, "hostname": sn.Hostname},
		"snapshot %s of %v at %s:", sn.ShortID(), sn.Paths, sn.Time.Local().Format("2006-01-02 15:04:05"))
}

// printLsNode prints one node ls lists (long: with mode, owner, size and
// time).
func (a *App) printLsNode(p string, n *tree.Node, long bool) {
	if a.g.json {
		j := toNodeJSON(p, n)
		a.out.jsonLine(struct {
			MessageType string `json:"message_type"`
			nodeJSON
		}{"node", j})
		return
	}
	if long {
		link := ""
		if n.Type == tree.TypeSymlink {
			link = " -> " + string(n.LinkTarget)
		}
		fmt.Fprintf(a.Stdout, "%s %5d %5d %12d %s %s%s\n", fs.FileMode(n.Mode), n.UID, n.GID, n.Size, n.ModTime.Local().Format("2006-01-02 15:04:05"), p, link)
	} else {
		fmt.Fprintln(a.Stdout, p)
	}
}
