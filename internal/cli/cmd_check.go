package cli

import (
	"fmt"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/checker"
	"github.com/spf13/cobra"
)

func (a *App) checkCommand() *cobra.Command {
	var readData bool
	var subset string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the repository for errors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// Check what the store holds, not the local metadata cache.
			a.g.s.NoCache = true
			opts := checker.Options{ReadData: readData}
			if err := app.ParseReadDataSubset(subset, &opts); err != nil {
				return err
			}
			c, repo, err := a.coreRepo(ctx)
			if err != nil {
				return err
			}
			res, err := c.Check(ctx, app.CheckRequest{Repo: repo, Options: opts})
			if res == nil {
				return err
			}
			a.printCheck(res, opts.ReadData)
			if err != nil {
				return err
			}
			a.out.textf("no errors found")
			return nil
		},
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "read and verify all data")
	cmd.Flags().StringVar(&subset, "read-data-subset", "", "read and verify a subset: N% or a size (random packs), or n/t")
	return cmd
}

// printCheck prints what a check found: its problems, the damaged packs
// and the files they affect, and a summary (one JSON line with --json).
func (a *App) printCheck(res *app.CheckResult, readData bool) {
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "summary", "ok": res.OK(), "result": &res.Result, "duration_seconds": res.Duration.Seconds()})
		return
	}
	for _, p := range res.Problems {
		switch {
		case p.Harmless && (p.Kind == "maint" || p.Kind == "sessions"):
			// Ignored by every command, but a sign that someone
			// writes to the store without the rules: always shown.
			a.out.warnf("%s", p)
		case p.Harmless:
			a.out.infof("note: %s", p)
		default:
			fmt.Fprintf(a.Stdout, "error: %s\n", p)
		}
	}
	if len(res.DamagedPacks) > 0 {
		fmt.Fprintf(a.Stdout, "damaged packs:\n")
		for _, p := range res.DamagedPacks {
			fmt.Fprintf(a.Stdout, "  %s\n", p)
		}
	}
	if len(res.Affected) > 0 {
		fmt.Fprintf(a.Stdout, "affected files:\n")
		for _, af := range res.Affected {
			fmt.Fprintf(a.Stdout, "  snapshot %s: %s\n", short(af.Snapshot), af.Path)
		}
	}
	harmless := len(res.Problems) - res.Harmful()
	msg := fmt.Sprintf("checked %d snapshots, %d packs, %d blobs", res.Snapshots, res.Packs, res.Blobs)
	if readData {
		msg += fmt.Sprintf("; read %d packs (%s)", res.PacksRead, formatBytes(res.BytesRead))
	}
	if harmless > 0 {
		msg += fmt.Sprintf("; %d harmless findings such as unindexed or unreferenced packs (-v lists them)", harmless)
	}
	a.out.textf("%s in %s", msg, formatDuration(res.Duration))
}
