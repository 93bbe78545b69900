package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/spf13/cobra"
)

func (a *App) copyCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var from, fromPwFile string
	cmd := &cobra.Command{
		Use:   "copy --from-repo OTHER [SNAPSHOT...]",
		Short: "Copy snapshots from another repository into this one",
		Long: `Copy snapshots (all, or the named ones) from --from-repo into the repository
of -r. Only blobs the target lacks are transferred. Snapshots already copied
are skipped. The source password comes from --from-password-file or
BUNKER_FROM_PASSWORD.

When both repositories share chunker and ID keys (init
--copy-chunker-params-from), blobs keep their IDs and are checked against the
target index without being read; otherwise every blob is read and re-hashed
with the target's key, and only those the target lacks are stored.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if from == "" {
				return errors.New("--from-repo is required")
			}
			pw := a.Getenv("BUNKER_FROM_PASSWORD")
			if fromPwFile != "" {
				b, err := os.ReadFile(fromPwFile)
				if err != nil {
					return err
				}
				pw = strings.TrimRight(string(b), "\r\n")
			}
			if pw == "" {
				return errors.New("no source password: use --from-password-file or BUNKER_FROM_PASSWORD")
			}
			c, err := a.core()
			if err != nil {
				return err
			}
			dst, err := a.repoRef(ctx)
			if err != nil {
				return fmt.Errorf("target: %w", err)
			}
			res, err := c.Copy(ctx, app.CopyRequest{From: app.Repo{Location: from, Password: pw}, To: dst,
				Filter: ff.filter(), Snapshots: args,
				Copied: func(from, to *snapshot.Snapshot) {
					a.out.textf("snapshot %s copied as %s", from.ShortID(), to.ShortID())
				}})
			if err != nil {
				return err
			}
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "summary", "snapshots_copied": res.Copied, "blobs_added": res.BlobsAdded, "bytes_added": res.BytesAdded,
					"bytes_stored": res.BytesStored, "duration_seconds": res.Duration.Seconds()})
			} else {
				a.out.textf("copied %d snapshots: %d new blobs, %s (%s stored)", res.Copied, res.BlobsAdded, formatBytes(res.BytesAdded), formatBytes(res.BytesStored))
			}
			return nil
		},
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().StringVar(&from, "from-repo", "", "source repository")
	cmd.Flags().StringVar(&fromPwFile, "from-password-file", "", "file holding the source password")
	return cmd
}
