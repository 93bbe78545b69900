package cli

import (
	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/spf13/cobra"
)

func (a *App) initCommand() *cobra.Command {
	var opts struct {
		compression string
		packSizeMiB int
		copyFrom    string
		fromPwFile  string
		objectLock  string
		retention   string
	}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a new repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			req := app.InitRequest{Location: a.g.repo, Compression: opts.compression, PackSize: opts.packSizeMiB << 20,
				ObjectLock: opts.objectLock, Retention: opts.retention}
			if err := req.Validate(); err != nil {
				return err
			}
			if opts.copyFrom != "" {
				pw, err := a.password(ctx, "enter password for repository "+opts.copyFrom+": ", false)
				if opts.fromPwFile != "" {
					pw, err = a.newPassword(ctx, opts.fromPwFile)
				}
				if err != nil {
					return err
				}
				req.CopyFrom = &app.Repo{Location: opts.copyFrom, Password: pw}
			}
			c, err := a.core()
			if err != nil {
				return err
			}
			if req.Password, err = a.password(ctx, "enter password for new repository: ", true); err != nil {
				return err
			}
			res, err := c.Init(ctx, req)
			if err != nil {
				return err
			}
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "initialized", "id": res.ID, "repository": res.Location, "key": res.Key})
				return nil
			}
			a.out.textf("created bunker repository %s at %s", res.ID[:10], res.Location)
			a.out.textf("Keep the password safe: without it the data cannot be recovered.")
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.compression, "compression", "zstd-fastest", "compression: zstd-fastest, zstd-default, zstd-better, zstd-best or none")
	cmd.Flags().IntVar(&opts.packSizeMiB, "pack-size", 16, "target pack size in MiB")
	flagRange(cmd.Flags(), 1, 512, "pack-size")
	cmd.Flags().StringVar(&opts.objectLock, "object-lock", "", "write every data object with an Object Lock retention: compliance or governance (S3 with Object Lock; creates the bucket with it)")
	cmd.Flags().StringVar(&opts.retention, "retention", "", "how long each object stays locked after it is written, with --object-lock (default 30d; e.g. 12w, 6mo, 1y; a lone m is refused: write mo or min); prune extends it for objects still needed")
	cmd.Flags().StringVar(&opts.copyFrom, "copy-chunker-params-from", "", "share chunker and blob-ID keys with this repository")
	cmd.Flags().StringVar(&opts.fromPwFile, "from-password-file", "", "password file of the --copy-chunker-params-from repository")
	return cmd
}
