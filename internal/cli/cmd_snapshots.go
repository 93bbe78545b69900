package cli

import (
	"fmt"
	"strings"

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

func (a *App) snapshotsCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var groupBy string
	var latest int
	var archives bool
	cmd := &cobra.Command{
		Use:   "snapshots [ID...]",
		Short: "List snapshots",
		Long: `List snapshots. The pieces of log archives (PostgreSQL WAL, MySQL
binlogs, MongoDB oplog: kind continuous) can number thousands; the text
listing counts them in one line unless --archives is given. --json lists
everything.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := a.openRepo(ctx)
			if err != nil {
				return err
			}
			all, err := a.loadSnapshots(ctx, r)
			if err != nil {
				return err
			}
			list := ff.filter().Apply(all)
			if len(args) > 0 {
				var sel []*snapshot.Snapshot
				for _, ref := range args {
					sn, err := snapshot.Find(all, ref, ff.filter())
					if err != nil {
						return err
					}
					sel = append(sel, sn)
				}
				list = sel
			}
			hidden := 0
			if !archives && !a.g.json && len(args) == 0 {
				var keep []*snapshot.Snapshot
				for _, sn := range list {
					if sn.Kind == kindContinuous {
						hidden++
						continue
					}
					keep = append(keep, sn)
				}
				list = keep
			}
			keys, groups, err := snapshot.Group(list, groupBy)
			if err != nil {
				return err
			}
			if a.g.json {
				if groupBy == "" {
					out := []snapshotJSON{}
					for _, sn := range lastN(list, latest) {
						out = append(out, snapshotJSON{sn, sn.ID.String(), sn.ShortID()})
					}
					a.out.jsonLine(out)
					return nil
				}
				type group struct {
					Key       snapshot.GroupKey `json:"group_key"`
					Snapshots []snapshotJSON    `json:"snapshots"`
				}
				out := []group{}
				for _, k := range keys {
					g := group{Key: k, Snapshots: []snapshotJSON{}}
					for _, sn := range lastN(groups[k.String()], latest) {
						g.Snapshots = append(g.Snapshots, snapshotJSON{sn, sn.ID.String(), sn.ShortID()})
					}
					out = append(out, g)
				}
				a.out.jsonLine(out)
				return nil
			}
			for i, k := range keys {
				if groupBy != "" {
					if i > 0 {
						fmt.Fprintln(a.Stdout)
					}
					fmt.Fprintf(a.Stdout, "snapshots for host %q paths %v tags %v:\n", k.Hostname, k.Paths, k.Tags)
				}
				var rows [][]string
				for _, sn := range lastN(groups[k.String()], latest) {
					size := ""
					if sn.Summary != nil {
						size = formatBytes(sn.Summary.TotalBytes)
					}
					rows = append(rows, []string{sn.ShortID(), sn.Time.Local().Format("2006-01-02 15:04:05"), sn.Hostname, sn.Kind, strings.Join(sn.Tags, ","), size, strings.Join(sn.Paths, " ")})
				}
				table(a.Stdout, []string{"ID", "Time", "Host", "Kind", "Tags", "Size", "Paths"}, rows)
				fmt.Fprintf(a.Stdout, "%s\n", plural(int64(len(rows)), "snapshot"))
			}
			if len(keys) == 0 {
				fmt.Fprintln(a.Stdout, "no snapshots")
			}
			if hidden > 0 {
				fmt.Fprintf(a.Stdout, "(and %s of log archives; --archives lists them, pg wal-list and mysql binlogs show what they hold)\n", plural(int64(hidden), "snapshot"))
			}
			return nil
		},
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().StringVarP(&groupBy, "group-by", "g", "", "group by `fields`: host, paths, tags (comma separated)")
	cmd.Flags().IntVar(&latest, "latest", 0, "show only the last `n` snapshots of each group")
	cmd.Flags().BoolVar(&archives, "archives", false, "also list the snapshots of log archives (WAL, binlogs, oplog) in the text listing")
	return cmd
}

func lastN(s []*snapshot.Snapshot, n int) []*snapshot.Snapshot {
	if n > 0 && len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
