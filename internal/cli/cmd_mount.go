package cli

import (
	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/spf13/cobra"
)

func (a *App) mountCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var allowOther bool
	cmd := &cobra.Command{
		Use:   "mount DIR",
		Short: "Browse the snapshots in a read-only FUSE filesystem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.core()
			if err != nil {
				return err
			}
			req := app.MountRequest{Filter: ff.filter(), Dir: args[0], AllowOther: allowOther}
			if req.Repo, err = a.repoRef(ctx); err != nil {
				return err
			}
			req.Mounted = func(dir string, n int) {
				if a.g.json {
					a.out.jsonLine(map[string]any{"message_type": "mounted", "mountpoint": dir, "snapshots": n})
					return
				}
				what := "snapshots"
				if n == 1 {
					what = "snapshot"
				}
				a.out.textf("mounted %d %s at %s; Ctrl-C unmounts", n, what, dir)
			}
			res, err := c.Mount(ctx, req)
			if err != nil {
				return err
			}
			a.out.result(map[string]any{"message_type": "unmounted", "mountpoint": res.Dir, "duration_seconds": res.Duration.Seconds()}, "unmounted %s", res.Dir)
			return nil
		},
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().BoolVar(&allowOther, "allow-other", false, "let other users see the files (needs user_allow_other in /etc/fuse.conf unless root)")
	return cmd
}
