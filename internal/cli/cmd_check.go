package cli

import (
	"fmt"
	"strconv"
	"strings"

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
		Long: `Check the structure of the repository: index files, packs, snapshots and
every tree they reference. --read-data also reads every pack and verifies every
blob; --read-data-subset reads a part: N% (packs chosen at random on every
run, as restic does), a size such as 500M (random packs up to that size), or
n/t (the n-th of t slices, to read everything in t runs).
It reads from the store itself, never from the local metadata cache.

Damaged packs are named together with the snapshots and files they affect.
The exit code is non-zero when anything harmful is found.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// Check what the store holds, not the local metadata cache.
			a.g.noCache = true
			opts := checker.Options{ReadData: readData}
			if err := parseSubset(subset, &opts); err != nil {
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

// parseSubset sets the subset of --read-data-subset (N%, n/t or a size)
// in opts.
func parseSubset(subset string, opts *checker.Options) error {
	if subset == "" {
		return nil
	}
	opts.ReadData = true
	if strings.HasSuffix(subset, "%") {
		p, ok := parseFraction(strings.TrimSuffix(subset, "%"), 0, 100)
		if !ok || p == 0 {
			return fmt.Errorf("--read-data-subset %q: want a percentage in (0,100]", subset)
		}
		opts.SubsetPercent = p
		return nil
	}
	if last := subset[len(subset)-1]; !strings.Contains(subset, "/") && (last < '0' || last > '9') {
		size, err := parseByteSize(subset)
		if err != nil {
			return fmt.Errorf("--read-data-subset %q: want N%%, n/t or a size such as 500M", subset)
		}
		opts.SubsetBytes = size
		return nil
	}
	n, t, ok := strings.Cut(subset, "/")
	ni, err1 := strconv.Atoi(n)
	ti, err2 := strconv.Atoi(t)
	if !ok || err1 != nil || err2 != nil || ti < 1 || ni < 1 || ni > ti {
		return fmt.Errorf("--read-data-subset %q: want N%% or n/t with 1 <= n <= t", subset)
	}
	opts.SubsetPart, opts.SubsetTotal = ni, ti
	return nil
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
