package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/storage/location"
	"github.com/spf13/cobra"
)

// Version is the program version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Exit codes (app.ExitCode's).
const (
	ExitOK            = app.ExitOK
	ExitError         = app.ExitError
	ExitPartial       = app.ExitPartial
	ExitViolation     = app.ExitViolation
	ExitNoRepository  = app.ExitNoRepository
	ExitNewerFormat   = app.ExitNewerFormat
	ExitWrongPassword = app.ExitWrongPassword
	ExitInterrupted   = app.ExitInterrupted
)

// App is one invocation of the program.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// BackendGetenv, when set, is all the environment storage backends
	// see (credentials, endpoints, key files) instead of Getenv: the
	// operator's runs give them the tenant's allowed variables only.
	BackendGetenv func(string) string
	// BackendPolicy, when set, limits what storage backends may reach
	// (schemes, hosts, the process's own identity): the operator's runs
	// of a tenant's repository set it.
	BackendPolicy *location.Policy
	// IsTerminal reports whether a file descriptor is a terminal; nil means
	// never (tests).
	IsTerminal func(fd uintptr) bool

	g   globalOptions
	log *slog.Logger
	out *printer
	// Daemon lets in-process tests drive bunker daemon (nil: normal).
	Daemon *DaemonHooks

	// c is the use cases' App, configured from the global flags on
	// first use (see core); what it opens is closed when the command
	// ends.
	c         *app.App
	coreReady bool
	coreMu    sync.Mutex

	// weakKDF makes new keys cheap; only for tests (hidden flag).
	weakKDF bool
	// memBudget sets a soft memory limit sized to the work (the real
	// program only: in-process tests share one runtime).
	memBudget bool
}

type globalOptions struct {
	repo            string
	repoFile        string
	repoErr         error // the location could not be resolved (setup)
	passwordFile    string
	passwordCommand string
	json            bool
	quiet           bool
	verbose         int
	noProgress      bool
	// s is how repositories are reached (app.App.Configure).
	s app.Settings
}

// Main runs the command line and returns the exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &App{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: getenv, IsTerminal: isTerminal, memBudget: true}
	return a.Run(ctx, args)
}

// Run executes args and returns the exit code.
func (a *App) Run(ctx context.Context, args []string) int {
	code, _ := a.exec(ctx, args)
	return code
}

// exec runs one command line like Run and also returns its error, cause
// and all: what an in-process caller (a plan job's steps) reports,
// instead of reading it back from the output.
func (a *App) exec(ctx context.Context, args []string) (int, error) {
	if a.Getenv == nil {
		a.Getenv = func(string) string { return "" }
	}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(a.Stdin)
	root.SetOut(a.Stdout)
	root.SetErr(a.Stderr)
	err := root.ExecuteContext(ctx)
	a.coreMu.Lock()
	if a.c != nil {
		_ = a.c.Close()
	}
	a.coreMu.Unlock()
	if err == nil {
		return ExitOK, nil
	}
	code := exitCode(ctx, err)
	if a.out != nil && a.g.json {
		a.out.jsonErrLine(map[string]any{"message_type": "error", "error": err.Error(), "exit_code": code})
	} else if code != ExitPartial {
		fmt.Fprintf(a.Stderr, "bunker: %s\n", err)
	} else {
		fmt.Fprintf(a.Stderr, "bunker: warning: %s\n", err)
	}
	return code, err
}

func exitCode(ctx context.Context, err error) int {
	return app.ExitCode(ctx, err)
}

func (a *App) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "bunker",
		Short:         "Deduplicating, compressed, encrypted backups",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.setup()
			return checkFlagRanges(cmd)
		},
	}
	root.SetVersionTemplate("bunker {{.Version}}\n")
	f := root.PersistentFlags()
	f.StringVarP(&a.g.repo, "repo", "r", "", "repository location (default $BUNKER_REPOSITORY)")
	f.StringVar(&a.g.repoFile, "repository-file", "", "read the repository location from a `file` (default $BUNKER_REPOSITORY_FILE)")
	f.StringVar(&a.g.passwordFile, "password-file", "", "read the password from a file (default $BUNKER_PASSWORD_FILE)")
	f.StringVar(&a.g.passwordCommand, "password-command", "", "run a command that prints the password (default $BUNKER_PASSWORD_COMMAND)")
	f.StringVar(&a.g.s.KeyHint, "key-hint", "", "try this key first")
	f.BoolVar(&a.g.json, "json", false, "print JSON lines instead of text")
	f.BoolVarP(&a.g.quiet, "quiet", "q", false, "print only errors")
	f.CountVarP(&a.g.verbose, "verbose", "v", "print more (repeat for more)")
	f.BoolVar(&a.g.noProgress, "no-progress", false, "never show a progress bar")
	f.StringVar(&a.g.s.LimitUpload, "limit-upload", "", "limit uploads to RATE per second (e.g. 5M, 800K; a plain number is KiB)")
	f.StringVar(&a.g.s.LimitDownload, "limit-download", "", "limit downloads to RATE per second (e.g. 5M, 800K; a plain number is KiB)")
	f.IntVar(&a.g.s.Connections, "connections", 0, "at most N operations on a remote store at once (default: unbounded beyond the engine's own)")
	f.StringVar(&a.g.s.CacheDir, "cache-dir", "", "cache remote repositories' metadata here (default $BUNKER_CACHE_DIR, else $XDG_CACHE_HOME/bunker or ~/.cache/bunker)")
	f.IntVar(&a.g.s.RetryAttempts, "retry-attempts", 10, "try a failing operation on a remote store at most N times (backoff with jitter between tries)")
	f.BoolVar(&a.g.s.NoCache, "no-cache", false, "keep no metadata cache of remote repositories (a temporary one, removed at the end, serves the command)")
	f.StringVar(&a.g.s.RepoAsOf, "repo-as-of", "", "read the repository as it was at TIME (RFC 3339, 2026-11-26 09:41:00+00, or local 2026-11-26 09:41:00; see docs/TIME.md); versioned object stores only, read-only")
	f.StringSliceVar(&a.g.s.AllowSchemes, "allow-schemes", nil, "open repositories only with these `schemes` (s3, gs, azure, sftp, rest, local; default $BUNKER_ALLOW_SCHEMES, else all)")
	f.StringSliceVar(&a.g.s.AllowHosts, "allow-hosts", nil, "let repository backends connect only to these `hosts` (names, *.domain, addresses, CIDR blocks; default $BUNKER_ALLOW_HOSTS); with this or --allow-schemes, loopback, link-local, unspecified and multicast addresses are refused unless listed")
	f.BoolVar(&a.g.s.NoAmbientCredentials, "no-ambient-credentials", false, "never let a repository backend use this process's own identity (instance role, credentials files) when the location brings none (default $BUNKER_NO_AMBIENT_CREDENTIALS=1)")
	flagRange(f, 0, 1024, "connections")
	flagRange(f, 0, 1000, "retry-attempts")
	f.BoolVar(&a.weakKDF, "insecure-kdf-for-tests", false, "make new keys cheap to derive (tests only)")
	_ = f.MarkHidden("insecure-kdf-for-tests")

	root.AddCommand(
		a.initCommand(),
		a.keyCommand(),
		a.backupCommand(),
		a.snapshotsCommand(),
		a.restoreCommand(),
		a.mountCommand(),
		a.lsCommand(),
		a.catCommand(),
		a.checkCommand(),
		a.forgetCommand(),
		a.pruneCommand(),
		a.dumpCommand(),
		a.findCommand(),
		a.diffCommand(),
		a.statsCommand(),
		a.repairCommand(),
		a.copyCommand(),
		a.serveCommand(),
		a.versionCommand(),
		a.planCommand(),
		a.runCommand(),
		a.statusCommand(),
		a.daemonCommand(),
		a.operatorCommand(),
		a.agentCommand(),
		a.drillCommand(),
		a.tagCommand(),
		a.listCommand(),
		a.rewriteCommand(),
		a.generateCommand(),
	)
	a.addSourceCommands(root)
	durationFlags(root)
	attachHelp(root)
	return root
}

func (a *App) setup() {
	a.g.repo, a.g.repoErr = resolveRepo(a.g.repo, a.g.repoFile, a.Getenv("BUNKER_REPOSITORY"), a.Getenv("BUNKER_REPOSITORY_FILE"))
	if a.g.passwordFile == "" {
		a.g.passwordFile = a.Getenv("BUNKER_PASSWORD_FILE")
	}
	if a.g.passwordCommand == "" {
		a.g.passwordCommand = a.Getenv("BUNKER_PASSWORD_COMMAND")
	}
	level := slog.LevelWarn
	if a.g.verbose > 0 {
		level = slog.LevelInfo
	}
	if a.g.verbose > 1 {
		level = slog.LevelDebug
	}
	if a.g.quiet {
		level = slog.LevelError
	}
	a.log = a.slogger(level)
	a.out = newPrinter(a)
}

// resolveRepo is the repository location of -r, --repository-file,
// $BUNKER_REPOSITORY or $BUNKER_REPOSITORY_FILE.
func resolveRepo(flag, flagFile, env, envFile string) (string, error) {
	return app.ResolveLocation(flag, flagFile, env, envFile, [4]string{"-r", "--repository-file", "BUNKER_REPOSITORY", "BUNKER_REPOSITORY_FILE"})
}

func (a *App) kdf() crypto.KDFParams {
	if a.weakKDF {
		return crypto.WeakKDF()
	}
	return crypto.DefaultKDF()
}

func (a *App) stderrIsTerminal() bool {
	if a.IsTerminal == nil {
		return false
	}
	if f, ok := a.Stderr.(*os.File); ok {
		return a.IsTerminal(f.Fd())
	}
	return false
}

func (a *App) stdinIsTerminal() bool {
	if a.IsTerminal == nil {
		return false
	}
	if f, ok := a.Stdin.(*os.File); ok {
		return a.IsTerminal(f.Fd())
	}
	return false
}

func (a *App) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "version", "version": Version, "format": format.Version,
					"go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH, "compressor": pack.EncoderName})
				return nil
			}
			fmt.Fprintf(a.Stdout, "bunker %s (repository format v%d)\n", Version, format.Version)
			fmt.Fprintf(a.Stdout, "built with %s for %s/%s; compresses with %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, pack.EncoderName)
			return nil
		},
	}
}

func plural(n int64, word string) string { return app.Plural(n, word) }

// short returns the first 8 characters of an object name for messages;
// names listed from storage may be shorter (stray files).
func short(name string) string {
	if len(name) > 8 {
		return name[:8]
	}
	return name
}
