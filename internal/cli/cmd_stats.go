package cli

import (
	"fmt"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/spf13/cobra"
)

func (a *App) statsCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var mode string
	cmd := &cobra.Command{
		Use:   "stats [SNAPSHOT...]",
		Short: "Show sizes: restore size, deduplicated size, raw repository size",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := a.core()
			if err != nil {
				return err
			}
			req := app.StatsRequest{Mode: mode, Filter: ff.filter(), Snapshots: args}
			if err := req.Validate(); err != nil {
				return fmt.Errorf("--mode: %w", err)
			}
			if req.Repo, err = a.repoRef(ctx); err != nil {
				return err
			}
			res, err := c.Stats(ctx, req)
			if err != nil {
				return err
			}
			a.printStats(res)
			return nil
		},
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().StringVar(&mode, "mode", app.StatsRestoreSize, "restore-size, files-by-contents, blobs-per-file or raw-data")
	return cmd
}

// printStats prints the sizes Stats counted (one JSON line with --json).
func (a *App) printStats(res *app.StatsResult) {
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "stats", "mode": res.Mode, "snapshots_count": res.Snapshots, "total_file_count": res.Files,
			"total_size": res.RestoreSize, "total_uncompressed_size": res.RawSize, "total_blob_count": res.Blobs, "stored_size": res.StoredSize,
			"repository_pack_bytes": res.PackBytes, "packs": res.Packs})
		return
	}
	fmt.Fprintf(a.Stdout, "Stats in %s mode:\n  Snapshots: %d\n", res.Mode, res.Snapshots)
	switch res.Mode {
	case app.StatsBlobsPerFile:
		fmt.Fprintf(a.Stdout, "  Files: %d\n  Blob references: %d\n  Total size: %s\n", res.Files, res.Blobs, formatBytes(res.RestoreSize))
	case app.StatsRawData:
		fmt.Fprintf(a.Stdout, "  Unique blobs: %d\n  Plaintext size: %s\n  Stored size: %s\n", res.Blobs, formatBytes(res.RawSize), formatBytes(res.StoredSize))
		if res.StoredSize > 0 {
			fmt.Fprintf(a.Stdout, "  Compression ratio: %.2fx\n", float64(res.RawSize)/float64(res.StoredSize))
		}
	default:
		fmt.Fprintf(a.Stdout, "  Files: %d\n  Total size: %s\n", res.Files, formatBytes(res.RestoreSize))
	}
	fmt.Fprintf(a.Stdout, "  Repository packs: %d (%s)\n", res.Packs, formatBytes(res.PackBytes))
}
