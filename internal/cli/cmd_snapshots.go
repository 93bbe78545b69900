package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/spf13/cobra"
)

func addFilterFlags(cmd *cobra.Command, f *snapshotFilterFlags) {
	cmd.Flags().StringArrayVar(&f.hosts, "host", nil, "only snapshots of this `host` (repeatable)")
	cmd.Flags().StringArrayVar(&f.tags, "tag", nil, "only snapshots with these `tags` (a,b = both; repeat for either)")
	cmd.Flags().StringArrayVar(&f.paths, "path", nil, "only snapshots including this `path` (repeatable)")
}

type snapshotJSON struct {
	*snapshot.Snapshot
	ID      string `json:"id"`
	ShortID string `json:"short_id"`
}

// MarshalJSON writes the snapshot with its summary under the names of
// the backup summary line (the stored object keeps its own).
func (s snapshotJSON) MarshalJSON() ([]byte, error) {
	type plain snapshotJSON
	b, err := json.Marshal(plain(s))
	if err != nil || s.Summary == nil {
		return b, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m["summary"] = summaryJSON(s.Summary)
	return json.Marshal(m)
}

func (a *App) snapshotsCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var groupBy string
	var latest int
	var archives bool
	cmd := &cobra.Command{
		Use:   "snapshots [ID...]",
		Short: "List snapshots",
		RunE: a.refRun(func(ctx context.Context, c *app.App, repo app.Repo, args []string) error {
			res, err := c.Snapshots(ctx, app.SnapshotsRequest{Repo: repo, Filter: ff.filter(), Snapshots: args, GroupBy: groupBy, Latest: latest,
				HideArchives: !archives && !a.g.json})
			if err != nil {
				return err
			}
			if a.g.json {
				a.printSnapshotsJSON(res, groupBy != "")
			} else {
				a.printSnapshots(res, groupBy != "")
			}
			return nil
		}),
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().StringVarP(&groupBy, "group-by", "g", "", "group by `fields`: host, paths, tags (comma separated)")
	cmd.Flags().IntVar(&latest, "latest", 0, "show only the last `n` snapshots of each group")
	cmd.Flags().BoolVar(&archives, "archives", false, "also list the snapshots of log archives (WAL, binlogs, oplog) in the text listing")
	return cmd
}

// printSnapshotsJSON prints one "snapshot" line per snapshot, or
// (grouped) one "snapshot_group" line per group (docs/JSON.md).
func (a *App) printSnapshotsJSON(res *app.SnapshotsResult, grouped bool) {
	if !grouped {
		for _, sn := range res.Snapshots {
			a.out.jsonLine(typed("snapshot", snapshotJSON{sn, sn.ID.String(), sn.ShortID()}))
		}
		return
	}
	for _, rg := range res.Groups {
		list := []snapshotJSON{}
		for _, sn := range rg.Snapshots {
			list = append(list, snapshotJSON{sn, sn.ID.String(), sn.ShortID()})
		}
		a.out.jsonLine(map[string]any{"message_type": "snapshot_group", "group_key": rg.Key, "snapshots": list})
	}
}

// printSnapshots prints the listed snapshots as a table (one per group
// when grouped).
func (a *App) printSnapshots(res *app.SnapshotsResult, grouped bool) {
	for i, g := range res.Groups {
		if grouped {
			if i > 0 {
				fmt.Fprintln(a.Stdout)
			}
			fmt.Fprintf(a.Stdout, "snapshots for host %q paths %v tags %v:\n", g.Key.Hostname, g.Key.Paths, g.Key.Tags)
		}
		var rows [][]string
		for _, sn := range g.Snapshots {
			size := ""
			if sn.Summary != nil {
				size = formatBytes(sn.Summary.TotalBytes)
			}
			rows = append(rows, []string{sn.ShortID(), sn.Time.Local().Format("2006-01-02 15:04:05"), sn.Hostname, sn.Kind, strings.Join(sn.Tags, ","), size, strings.Join(sn.Paths, " ")})
		}
		table(a.Stdout, []string{"ID", "Time", "Host", "Kind", "Tags", "Size", "Paths"}, rows)
		fmt.Fprintf(a.Stdout, "%s\n", plural(int64(len(rows)), "snapshot"))
	}
	if len(res.Groups) == 0 {
		fmt.Fprintln(a.Stdout, "no snapshots")
	}
	if res.Hidden > 0 {
		fmt.Fprintf(a.Stdout, "(and %s of log archives; --archives lists them, pg wal-list and mysql binlogs show what they hold)\n", plural(int64(res.Hidden), "snapshot"))
	}
}
