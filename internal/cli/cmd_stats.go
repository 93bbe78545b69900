package cli

import (
	"fmt"

	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/engine/walker"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/spf13/cobra"
)

func (a *App) statsCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var mode string
	cmd := &cobra.Command{
		Use:   "stats [SNAPSHOT...]",
		Short: "Show sizes: restore size, deduplicated size, raw repository size",
		Long: `Modes: restore-size (the size a restore would write), raw-data (the
deduplicated plaintext and stored size of the blobs the snapshots reference),
files-by-contents (unique file contents).`,
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
			if len(args) > 0 {
				list = nil
				for _, ref := range args {
					sn, err := snapshot.Find(all, ref, ff.filter())
					if err != nil {
						return err
					}
					list = append(list, sn)
				}
			}
			var files, restoreSize, rawSize, storedSize, blobs int64
			seen := map[[33]byte]bool{}
			seenFile := map[string]bool{}
			for _, sn := range list {
				err := walker.Walk(ctx, r, sn.Tree, "/", func(p string, n *tree.Node) error {
					if n.Type != tree.TypeFile {
						return nil
					}
					switch mode {
					case "restore-size":
						files++
						restoreSize += int64(n.Size)
					case "files-by-contents":
						k := fmt.Sprint(n.Content)
						if !seenFile[k] {
							seenFile[k] = true
							files++
							restoreSize += int64(n.Size)
						}
					case "raw-data":
						files++
						for _, id := range n.Content {
							var k [33]byte
							copy(k[:], id[:])
							if seen[k] {
								continue
							}
							seen[k] = true
							if l, ok := r.Index().Lookup(id, pack.DataBlob); ok {
								blobs++
								rawSize += int64(l.RawLength)
								storedSize += int64(l.Length)
							}
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			var repoSize int64
			var packs int
			_ = r.Backend().List(ctx, storage.PackFile, func(fi storage.FileInfo) error {
				repoSize += fi.Size
				packs++
				return nil
			})
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "stats", "mode": mode, "snapshots_count": len(list), "total_file_count": files,
					"total_size": restoreSize, "total_uncompressed_size": rawSize, "total_blob_count": blobs, "stored_size": storedSize,
					"repository_pack_bytes": repoSize, "packs": packs})
				return nil
			}
			fmt.Fprintf(a.Stdout, "Stats in %s mode:\n  Snapshots: %d\n", mode, len(list))
			switch mode {
			case "raw-data":
				fmt.Fprintf(a.Stdout, "  Unique blobs: %d\n  Plaintext size: %s\n  Stored size: %s\n", blobs, formatBytes(rawSize), formatBytes(storedSize))
				if storedSize > 0 {
					fmt.Fprintf(a.Stdout, "  Compression ratio: %.2fx\n", float64(rawSize)/float64(storedSize))
				}
			default:
				fmt.Fprintf(a.Stdout, "  Files: %d\n  Total size: %s\n", files, formatBytes(restoreSize))
			}
			fmt.Fprintf(a.Stdout, "  Repository packs: %d (%s)\n", packs, formatBytes(repoSize))
			return nil
		},
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().StringVar(&mode, "mode", "restore-size", "restore-size, raw-data or files-by-contents")
	return cmd
}
