package cli

import (
	"errors"
	"fmt"

	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/timespec"
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
		Long: `Create a new, empty repository at the location of -r.

With --copy-chunker-params-from, the new repository shares the chunker secret
and blob-ID key of an existing one, so 'bunker copy' between the two moves only
missing blobs without re-chunking (use it for the copies of a 3-2-1 plan).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ropts := repository.Options{KDF: a.kdf(), Compression: opts.compression, PackSize: opts.packSizeMiB << 20}
			if opts.objectLock != "" {
				if opts.retention == "" {
					opts.retention = "30d"
				}
				ret, err := timespec.ParseRetention(opts.retention)
				if err != nil {
					return fmt.Errorf("--retention: %w", err)
				}
				lc := &repository.LockConfig{Mode: storage.LockMode(opts.objectLock), Retention: ret}
				if err := lc.Validate(); err != nil {
					return fmt.Errorf("--object-lock/--retention: %w", err)
				}
				ropts.ObjectLock = lc
			} else if opts.retention != "" {
				return errors.New("--retention needs --object-lock compliance|governance")
			}
			if opts.copyFrom != "" {
				pw := ""
				if opts.fromPwFile != "" {
					p, err := a.newPassword(ctx, opts.fromPwFile)
					if err != nil {
						return err
					}
					pw = p
				}
				src, err := a.openRepoAt(ctx, opts.copyFrom, pw)
				if err != nil {
					return fmt.Errorf("open %s: %w", opts.copyFrom, err)
				}
				ropts.CopyFrom = src
			}
			pw, err := a.password(ctx, "enter password for new repository: ", true)
			if err != nil {
				return err
			}
			be, err := a.backendForInit(ctx, a.g.repo, ropts.ObjectLock != nil)
			if err != nil {
				return err
			}
			r, err := repository.Init(ctx, be, pw, ropts)
			if err != nil {
				return err
			}
			a.addCloser(r)
			cfg := r.Config()
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "initialized", "id": cfg.ID, "repository": be.Location(), "key": r.KeyName()})
				return nil
			}
			a.out.textf("created bunker repository %s at %s", cfg.ID[:10], be.Location())
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
