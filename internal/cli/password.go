package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/bunkerbackup/bunker/internal/source"
	"golang.org/x/term"
)

func isTerminal(fd uintptr) bool { return term.IsTerminal(int(fd)) }

// password finds the repository password: BUNKER_PASSWORD, then
// --password-file / BUNKER_PASSWORD_FILE, then --password-command, then a
// prompt on the terminal.
func (a *App) password(ctx context.Context, prompt string, confirm bool) (string, error) {
	if pw := a.Getenv("BUNKER_PASSWORD"); pw != "" {
		return pw, nil
	}
	if a.g.passwordFile != "" {
		b, err := os.ReadFile(a.g.passwordFile)
		if err != nil {
			return "", fmt.Errorf("read password file: %w", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return "", fmt.Errorf("password file %s is empty", a.g.passwordFile)
		}
		return pw, nil
	}
	if a.g.passwordCommand != "" {
		return runPasswordCommand(ctx, a.g.passwordCommand)
	}
	if !a.stdinIsTerminal() {
		return "", errors.New("no password given: set BUNKER_PASSWORD, BUNKER_PASSWORD_FILE, --password-file or --password-command, or run on a terminal")
	}
	pw, err := a.readPassword(prompt)
	if err != nil {
		return "", err
	}
	if confirm {
		again, err := a.readPassword("enter the password again: ")
		if err != nil {
			return "", err
		}
		if again != pw {
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
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read new password file: %w", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
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
	pw, err := a.readPassword("enter the new password: ")
	if err != nil {
		return "", err
	}
	again, err := a.readPassword("enter the new password again: ")
	if err != nil {
		return "", err
	}
	if pw != again {
		return "", errors.New("passwords do not match")
	}
	if pw == "" {
		return "", errors.New("an empty password is not allowed")
	}
	return pw, nil
}

func runPasswordCommand(ctx context.Context, command string) (string, error) {
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(ctx, "cmd", "/C", command)
	} else {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", command)
	}
	// It computes one password: it needs the user's environment (a
	// keyring's, a vault's variables), not bunker's other secrets.
	cmd.Env = source.ChildEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("password command failed: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	line, _, _ := bufio.NewReader(bytes.NewReader(out)).ReadLine()
	if len(line) == 0 {
		return "", errors.New("password command printed nothing")
	}
	return string(line), nil
}
