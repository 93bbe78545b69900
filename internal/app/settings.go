package app

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
	"github.com/bunkerbackup/bunker/internal/storage/location"
	"github.com/bunkerbackup/bunker/internal/timespec"
	"github.com/bunkerbackup/bunker/internal/units"
)

// Settings say how repositories are reached: what the command line's
// global flags give, or a plan's repository entry. Empty fields fall back
// to the environment (BUNKER_ALLOW_SCHEMES, BUNKER_CACHE_DIR…) where one
// is documented.
type Settings struct {
	KeyHint string
	// LimitUpload and LimitDownload are rates (units.ParseRate).
	LimitUpload, LimitDownload string
	Connections                int
	CacheDir                   string
	NoCache                    bool
	// RepoAsOf is a time (timespec.ParseTime) to read repositories as
	// they were then.
	RepoAsOf                 string
	RetryAttempts            int
	AllowSchemes, AllowHosts []string
	NoAmbientCredentials     bool
}

// Configure sets a's storage options from s and the environment. A
// policy already set (the operator's for a tenant) is kept.
func (a *App) Configure(s Settings) error {
	so := &a.Storage
	so.KeyHint, so.Connections, so.RetryAttempts = s.KeyHint, s.Connections, max(s.RetryAttempts, 1)
	if so.Policy == nil {
		var err error
		if so.Policy, err = a.settingsPolicy(s); err != nil {
			return err
		}
	}
	var err error
	if so.UploadBytes, err = units.ParseRate(s.LimitUpload); err != nil {
		return fmt.Errorf("--limit-upload: %w", err)
	}
	if so.DownloadBytes, err = units.ParseRate(s.LimitDownload); err != nil {
		return fmt.Errorf("--limit-download: %w", err)
	}
	if s.RepoAsOf != "" {
		if so.AsOf, err = timespec.ParseTime(s.RepoAsOf); err != nil {
			return fmt.Errorf("--repo-as-of: %w", err)
		}
	}
	switch {
	case s.NoCache:
		so.CacheDir = ""
	case s.CacheDir != "":
		so.CacheDir = s.CacheDir
	default:
		so.CacheDir = a.CacheRoot()
	}
	return nil
}

// settingsPolicy is the repository policy of s's allow lists and
// ambient-credentials switch (or their variables), nil when none is set.
func (a *App) settingsPolicy(s Settings) (*location.Policy, error) {
	list := func(v []string, env string) []string {
		if len(v) > 0 {
			return v
		}
		var out []string
		for _, s := range strings.Split(a.getenv(env), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	schemes, hosts := list(s.AllowSchemes, "BUNKER_ALLOW_SCHEMES"), list(s.AllowHosts, "BUNKER_ALLOW_HOSTS")
	noAmbient := s.NoAmbientCredentials || a.getenv("BUNKER_NO_AMBIENT_CREDENTIALS") == "1"
	if len(schemes) == 0 && len(hosts) == 0 && !noAmbient {
		return nil, nil
	}
	p, err := location.NewPolicy(location.PolicyOptions{Schemes: schemes, Hosts: hosts, AmbientCredentials: !noAmbient})
	if err != nil {
		return nil, fmt.Errorf("--allow-schemes/--allow-hosts: %w", err)
	}
	return p, nil
}

// ResolveLocation is a repository location: the flag, else the flag
// file's content, else the variable, else the variable file's content
// (restic's RESTIC_REPOSITORY and RESTIC_REPOSITORY_FILE). Naming it
// twice at one level is an error; what names it is in the message.
func ResolveLocation(flag, flagFile, env, envFile string, names [4]string) (string, error) {
	if flag == "" && flagFile == "" {
		flag, flagFile = env, envFile
		if flag != "" && flagFile != "" {
			return "", fmt.Errorf("both %s and %s are set: unset one", names[2], names[3])
		}
	}
	if flag != "" && flagFile != "" {
		return "", fmt.Errorf("%s and %s exclude each other", names[0], names[1])
	}
	if flagFile == "" {
		return flag, nil
	}
	b, err := os.ReadFile(flagFile)
	if err != nil {
		return "", fmt.Errorf("repository file: %w", err)
	}
	loc := strings.TrimSpace(string(b))
	if loc == "" {
		return "", fmt.Errorf("repository file %s is empty", flagFile)
	}
	return loc, nil
}

// ErrNoPassword says no password source was given: a front end with a
// terminal asks for one.
var ErrNoPassword = errors.New("no password given")

// ResolvePassword is a password given directly, else read from a file,
// else printed by a command; ErrNoPassword when none is given.
func ResolvePassword(ctx context.Context, direct, file, command string) (string, error) {
	switch {
	case direct != "":
		return direct, nil
	case file != "":
		pw, err := ReadSecretFile(file)
		if err != nil {
			return "", fmt.Errorf("read password file: %w", err)
		}
		if pw == "" {
			return "", fmt.Errorf("password file %s is empty", file)
		}
		return pw, nil
	case command != "":
		out, err := RunSecretCommand(ctx, command)
		if err != nil {
			return "", fmt.Errorf("password command failed: %w", err)
		}
		line, _, _ := bufio.NewReader(strings.NewReader(out)).ReadLine()
		if len(line) == 0 {
			return "", errors.New("password command printed nothing")
		}
		return string(line), nil
	}
	return "", ErrNoPassword
}

// ReadSecretFile returns a secret kept in a file, without the line
// ending an editor leaves.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// RunSecretCommand runs a command that prints a secret (a password
// command, a plan's command: reference) and returns what it printed
// without the final line ending. It computes one secret: it gets the
// user's environment (a keyring's, a vault's variables), never Bunker's
// other secrets.
func RunSecretCommand(ctx context.Context, command string) (string, error) {
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(ctx, "cmd", "/C", command)
	} else {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", command)
	}
	cmd.Env = source.ChildEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimRight(string(out), "\r\n"), nil
}
