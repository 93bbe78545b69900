package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/bunkerbackup/bunker/internal/app"
	"golang.org/x/term"
)

func isTerminal(fd uintptr) bool { return term.IsTerminal(int(fd)) }

// password finds the repository password: BUNKER_PASSWORD, then
// --password-file / BUNKER_PASSWORD_FILE, then --password-command, then a
// prompt on the terminal.
func (a *App) password(ctx context.Context, prompt string, confirm bool) (string, error) {
	pw, err := app.ResolvePassword(ctx, a.Getenv("BUNKER_PASSWORD"), a.g.passwordFile, a.g.passwordCommand)
	if !errors.Is(err, app.ErrNoPassword) {
		return pw, err
	}
	if !a.stdinIsTerminal() {
		return "", errors.New("no password given: set BUNKER_PASSWORD, BUNKER_PASSWORD_FILE, --password-file or --password-command, or run on a terminal")
	}
	again := ""
	if confirm {
		again = "enter the password again: "
	}
	return a.promptPassword(prompt, again)
}

// promptPassword asks on the terminal, a second time with again unless
// it is "".
func (a *App) promptPassword(prompt, again string) (string, error) {
	pw, err := a.readPassword(prompt)
	if err != nil {
		return "", err
	}
	if again != "" {
		pw2, err := a.readPassword(again)
		if err != nil {
			return "", err
		}
		if pw2 != pw {
			return "", errors.New("passwords do not match")
		}
	}
	if pw == "" {
		return "", errors.New("an empty password is not allowed")
	}
	return pw, nil
}

func (a *App) readPassword(prompt string) (string, error) {
	fmt.Fprint(a.Stderr, prompt)
	f := a.Stdin.(*os.File)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.Stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}

// newPassword asks for a new password (key add / passwd / init).
func (a *App) newPassword(ctx context.Context, file string) (string, error) {
	if file != "" {
		pw, err := app.ReadSecretFile(file)
		if err != nil {
			return "", fmt.Errorf("read new password file: %w", err)
		}
		if pw == "" {
			return "", errors.New("new password file is empty")
		}
		return pw, nil
	}
	if pw := a.Getenv("BUNKER_NEW_PASSWORD"); pw != "" {
		return pw, nil
	}
	if !a.stdinIsTerminal() {
		return "", errors.New("no new password given: use --new-password-file or BUNKER_NEW_PASSWORD, or run on a terminal")
	}
	return a.promptPassword("enter the new password: ", "enter the new password again: ")
}
