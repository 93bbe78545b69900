package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

// bunkerBin is the binary built by TestMain.
var bunkerBin string

const testPassword = "e2e password"

func TestMain(m *testing.M) {
	// The binary, the servers and the archive_commands they run must see
	// only what each test sets: no BUNKER_PASSWORD or PGHOST of the
	// caller's shell.
	testutil.CleanEnv()
	dir, err := os.MkdirTemp("", "bunker-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Traversable by other users (the unreadable-source test runs the
	// binary as "nobody").
	_ = os.Chmod(dir, 0o755)
	bunkerBin = filepath.Join(dir, "bunker")
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = "/usr/local/go/bin/go"
	}
	args := []string{"build", "-o", bunkerBin}
	if os.Getenv("BUNKER_E2E_RACE") == "1" {
		// Opt-in: a race-detecting binary (much slower; for the stress
		// tests rather than the timing-calibrated kill test).
		args = append(args, "-race")
	}
	build := exec.Command(goCmd, append(args, "github.com/bunkerbackup/bunker/cmd/bunker")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building bunker: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if testutil.WholeRun() {
		if missing := jsonRuns.Missing(jsonHere); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no test ran these commands with --json, so docs/JSON.md is not checked against them: %s\n", strings.Join(missing, ", "))
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

// jsonHere are the commands whose --json lines these tests check against
// docs/JSON.md (internal/cli's tests check the others, in-process).
var jsonHere = []string{"backup postgres", "restore postgres", "pg check", "pg wal-receive"}

// jsonRuns records the commands run with --json.
var jsonRuns testutil.JSONRuns

// checkJSON checks, when args has --json, what the run printed against
// docs/JSON.md.
func checkJSON(t *testing.T, args []string, stdout, stderr string) {
	t.Helper()
	jsonRuns.Check(t, "../../docs/JSON.md", args, cli.CommandPath, stdout, stderr)
}

// result of one bunker process.
type result = testutil.Result

// repo runs the binary against one repository.
type repo struct {
	t    *testing.T
	dir  string
	env  []string
	cred *syscall.Credential // run as another user when set
}

func newRepo(t *testing.T, dir string) *repo {
	return &repo{t: t, dir: dir, env: []string{"BUNKER_PASSWORD=" + testPassword, "PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}}
}

// initRepo creates a repository with cheap key derivation.
func initRepo(t *testing.T, extra ...string) *repo {
	t.Helper()
	r := newRepo(t, filepath.Join(t.TempDir(), "repo"))
	r.mustRun(append([]string{"--insecure-kdf-for-tests", "init"}, extra...)...)
	return r
}

func (r *repo) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"-r", r.dir}, args...)
	cmd := exec.CommandContext(ctx, bunkerBin, full...)
	cmd.Env = r.env
	cmd.Stdin = nil
	if r.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	}
	return cmd
}

func (r *repo) run(args ...string) result {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := r.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	res := result{Stdout: stdout.String(), Stderr: stderr.String(), Args: cmd.Args[1:], Dur: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	default:
		r.t.Fatalf("run bunker %v: %v", args, err)
	}
	if strings.Contains(res.Stderr, "panic:") || strings.Contains(res.Stderr, "goroutine ") {
		r.t.Errorf("bunker panicked:\n%s", res)
	}
	if strings.Contains(res.Stderr, "WARNING: DATA RACE") {
		r.t.Errorf("bunker has a data race:\n%s", res)
	}
	checkJSON(r.t, res.Args, res.Stdout, res.Stderr)
	return res
}

func (r *repo) mustRun(args ...string) result {
	r.t.Helper()
	return testutil.Expect(r.t, r.run(args...), 0)
}

func (r *repo) expect(code int, args ...string) result {
	r.t.Helper()
	return testutil.Expect(r.t, r.run(args...), code)
}

// snapshotIDs lists the snapshot IDs, oldest first.
func (r *repo) snapshotIDs() []string {
	r.t.Helper()
	res := r.mustRun("--json", "snapshots")
	var list []struct {
		ID string `json:"id"`
	}
	testutil.DecodeMessages(r.t, res.Stdout, "snapshot", &list)
	var ids []string
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return ids
}

// ---- data ----

// writeRandomFile writes size pseudo-random bytes from seed to path.
func writeRandomFile(t *testing.T, path string, seed uint64, size int64) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	must(t, err)
	if _, err := io.CopyN(f, newChaCha(seed), size); err != nil {
		t.Fatal(err)
	}
	must(t, f.Close())
}

// repoFiles lists object files of a kind (name -> size); temporary files
// are left out.
func repoFiles(t *testing.T, repoDir, kind string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(filepath.Join(repoDir, kind), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			info, err := d.Info()
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			out[d.Name()] = info.Size()
		}
		return nil
	})
	must(t, err)
	return out
}

// Shared with internal/cli.
var (
	newChaCha  = testutil.ChaCha
	randBytes  = testutil.RandBytes
	digest     = testutil.TreeDigest
	diffDigest = testutil.DiffDigests
	num        = testutil.Num
	str        = testutil.Str
)

func must(t *testing.T, err error)                     { t.Helper(); testutil.Must(t, err) }
func writeFile(t *testing.T, path string, data []byte) { t.Helper(); testutil.WriteFile(t, path, data) }
