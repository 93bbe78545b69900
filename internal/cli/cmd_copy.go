package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/spf13/cobra"
)

func (a *App) copyCommand() *cobra.Command {
	var ff snapshotFilterFlags
	var from fromFlags
	cmd := &cobra.Command{
		Use:               "copy --from-repo OTHER [SNAPSHOT...]",
		Short:             "Copy snapshots from another repository into this one",
		ValidArgsFunction: a.completeFromSnapshots(&from),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, err := a.fromRepo(ctx, &from)
			if err != nil {
				return err
			}
			c, err := a.core()
			if err != nil {
				return err
			}
			dst, err := a.repoRef(ctx)
			if err != nil {
				return fmt.Errorf("target: %w", err)
			}
			res, err := c.Copy(ctx, app.CopyRequest{From: src, To: dst,
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
	from.add(cmd)
	return cmd
}

// fromFlags name copy's source repository and its password, as restic's
// --from-* flags and RESTIC_FROM_* variables do.
type fromFlags struct {
	repo, repoFile, pwFile, pwCommand string
}

func (f *fromFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.repo, "from-repo", "", "source repository (default $BUNKER_FROM_REPOSITORY)")
	fl.StringVar(&f.repoFile, "from-repository-file", "", "read the source repository's location from a `file` (default $BUNKER_FROM_REPOSITORY_FILE)")
	fl.StringVar(&f.pwFile, "from-password-file", "", "file holding the source password (default $BUNKER_FROM_PASSWORD_FILE)")
	fl.StringVar(&f.pwCommand, "from-password-command", "", "command printing the source password (default $BUNKER_FROM_PASSWORD_COMMAND)")
}

// fromRepo is the source repository the flags and $BUNKER_FROM_* name,
// with its password.
func (a *App) fromRepo(ctx context.Context, f *fromFlags) (app.Repo, error) {
	loc, err := app.ResolveLocation(f.repo, f.repoFile, a.Getenv("BUNKER_FROM_REPOSITORY"), a.Getenv("BUNKER_FROM_REPOSITORY_FILE"),
		[4]string{"--from-repo", "--from-repository-file", "BUNKER_FROM_REPOSITORY", "BUNKER_FROM_REPOSITORY_FILE"})
	if err != nil {
		return app.Repo{}, fmt.Errorf("source: %w", err)
	}
	if loc == "" {
		return app.Repo{}, errors.New("no source repository: use --from-repo, --from-repository-file or BUNKER_FROM_REPOSITORY")
	}
	var pw string
	if f.pwFile != "" || f.pwCommand != "" {
		pw, err = app.ResolvePassword(ctx, "", f.pwFile, f.pwCommand)
	} else {
		pw, err = app.ResolvePassword(ctx, a.Getenv("BUNKER_FROM_PASSWORD"), a.Getenv("BUNKER_FROM_PASSWORD_FILE"), a.Getenv("BUNKER_FROM_PASSWORD_COMMAND"))
	}
	if errors.Is(err, app.ErrNoPassword) {
		return app.Repo{}, errors.New("no source password: use --from-password-file, --from-password-command or BUNKER_FROM_PASSWORD")
	}
	if err != nil {
		return app.Repo{}, fmt.Errorf("source password: %w", err)
	}
	return app.Repo{Location: loc, Password: pw}, nil
}
