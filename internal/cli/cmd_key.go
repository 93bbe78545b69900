package cli

import (
	"context"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/spf13/cobra"
)

func (a *App) keyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the password keys of a repository",
	}
	cmd.AddCommand(a.keyAddCommand(), a.keyListCommand(), a.keyRemoveCommand(), a.keyPasswdCommand())
	return cmd
}

func (a *App) keyAddCommand() *cobra.Command {
	var newPwFile string
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a password that opens the repository",
		Args:  cobra.NoArgs,
		RunE: a.repoRun(func(ctx context.Context, c *app.App, r *repository.Repository, args []string) error {
			pw, err := a.newPassword(ctx, newPwFile)
			if err != nil {
				return err
			}
			name, err := r.AddKey(ctx, pw, a.kdf())
			if err != nil {
				return err
			}
			a.out.result(map[string]any{"message_type": "key_added", "id": name}, "added key %s", short(name))
			return nil
		}),
	}
	add.Flags().StringVar(&newPwFile, "new-password-file", "", "file holding the new password (default $BUNKER_NEW_PASSWORD or a prompt)")
	return add
}

func (a *App) keyListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List keys",
		Args:  cobra.NoArgs,
		RunE: a.repoRun(func(ctx context.Context, c *app.App, r *repository.Repository, args []string) error {
			keys, err := r.Keys(ctx)
			if err != nil {
				return err
			}
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "keys", "keys": keys})
				return nil
			}
			var rows [][]string
			for _, k := range keys {
				cur := " "
				if k.Current {
					cur = "*"
				}
				if k.Damaged != "" {
					rows = append(rows, []string{cur + short(k.Name), "", "", "", "DAMAGED (key remove " + short(k.Name) + ")"})
					continue
				}
				rows = append(rows, []string{cur + short(k.Name), k.User, k.Host, k.Created.Local().Format("2006-01-02 15:04:05"), k.KDF})
			}
			table(a.Stdout, []string{" ID", "User", "Host", "Created", "KDF"}, rows)
			return nil
		}),
	}
}

func (a *App) keyRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a key (not the one in use, not the last)",
		Args:  cobra.ExactArgs(1),
		RunE: a.repoRun(func(ctx context.Context, c *app.App, r *repository.Repository, args []string) error {
			if err := r.RemoveKey(ctx, args[0]); err != nil {
				return err
			}
			a.out.textf("removed key %s", args[0])
			return nil
		}),
	}
}

func (a *App) keyPasswdCommand() *cobra.Command {
	var passwdFile string
	passwd := &cobra.Command{
		Use:   "passwd",
		Short: "Change the password of the key in use",
		Args:  cobra.NoArgs,
		RunE: a.repoRun(func(ctx context.Context, c *app.App, r *repository.Repository, args []string) error {
			pw, err := a.newPassword(ctx, passwdFile)
			if err != nil {
				return err
			}
			name, err := r.ChangePassword(ctx, pw, a.kdf())
			if err != nil {
				return err
			}
			a.out.textf("password changed; new key %s", short(name))
			return nil
		}),
	}
	passwd.Flags().StringVar(&passwdFile, "new-password-file", "", "file holding the new password (default $BUNKER_NEW_PASSWORD or a prompt)")
	return passwd
}
