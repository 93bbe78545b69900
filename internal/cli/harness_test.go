package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

// testPassword is the password of every repository the tests create.
const testPassword = "correct horse battery staple"

// result is the outcome of one in-process bunker invocation.
type result = testutil.Result

// repoEnv runs bunker in-process against one repository.
type repoEnv struct {
	t    *testing.T
	repo string
	env  map[string]string
}

func newRepoEnv(t *testing.T, repo string) *repoEnv {
	return &repoEnv{t: t, repo: repo, env: map[string]string{"BUNKER_PASSWORD": testPassword}}
}

// initRepo creates a repository in a new temporary directory with cheap key
// derivation and returns its environment.
func initRepo(t *testing.T, extra ...string) *repoEnv {
	t.Helper()
	e := newRepoEnv(t, filepath.Join(t.TempDir(), "repo"))
	e.mustRun(append([]string{"--insecure-kdf-for-tests", "init"}, extra...)...)
	return e
}

func (e *repoEnv) getenv(k string) string { return e.env[k] }

// runIn runs one command with the given stdin; "-r repo" is prepended.
func (e *repoEnv) runIn(stdin io.Reader, args ...string) (res result) {
	e.t.Helper()
	full := append([]string{"-r", e.repo}, args...)
	return runApp(e.t, stdin, e.getenv, full...)
}

func (e *repoEnv) run(args ...string) result {
	e.t.Helper()
	return e.runIn(strings.NewReader(""), args...)
}

// mustRun runs a command that must exit 0.
func (e *repoEnv) mustRun(args ...string) result {
	e.t.Helper()
	return testutil.Expect(e.t, e.run(args...), 0)
}

// expect runs a command that must exit with the given code.
func (e *repoEnv) expect(code int, args ...string) result {
	e.t.Helper()
	return testutil.Expect(e.t, e.run(args...), code)
}

// runApp runs the command line in-process. A panic on the calling
// goroutine is turned into a test failure with the stack.
func runApp(t *testing.T, stdin io.Reader, getenv func(string) string, args ...string) (res result) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	res.Args = args
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("bunker %s panicked: %v\n%s", strings.Join(args, " "), p, debug.Stack())
			res.Code = -1
			res.Stdout, res.Stderr = stdout.String(), stderr.String()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	app := &cli.App{Stdin: stdin, Stdout: &stdout, Stderr: &stderr, Getenv: getenv}
	res.Code = app.Run(ctx, args)
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	if strings.Contains(res.Stderr, "panic:") || strings.Contains(res.Stderr, "goroutine ") {
		t.Errorf("output looks like a panic:\n%s", res)
	}
	checkJSONRun(t, args, res)
	return res
}

// backupJSON runs "backup --json ARGS" expecting exit code want and returns
// the summary line.
func (e *repoEnv) backupJSON(want int, args ...string) (map[string]any, result) {
	e.t.Helper()
	r := e.expect(want, append([]string{"--json", "backup"}, args...)...)
	return r.Message(e.t, "summary"), r
}

// snapshots returns the decoded "snapshots --json" list.
func (e *repoEnv) snapshots() []map[string]any {
	e.t.Helper()
	r := e.mustRun("--json", "snapshots")
	var list []map[string]any
	testutil.DecodeMessages(e.t, r.Stdout, "snapshot", &list)
	return list
}

// ---- source trees ----

func assertSameTree(t *testing.T, want, got map[string]string) {
	t.Helper()
	if d := diffDigests(want, got); len(d) > 0 {
		if len(d) > 30 {
			d = append(d[:30], fmt.Sprintf("... and %d more", len(d)-30))
		}
		t.Fatalf("restored tree differs from the source:\n  %s", strings.Join(d, "\n  "))
	}
}

// listRepoFiles lists the object files of one kind in a local repository
// (packs are in shard subdirectories). Temporary files are left out.
func listRepoFiles(t *testing.T, repo, kind string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(repo, kind)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// modifyFile rewrites a repository file (which is read-only) with fn.
func modifyFile(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	must(t, os.Chmod(path, 0o644))
	must(t, os.WriteFile(path, fn(b), 0o644))
	must(t, os.Chmod(path, 0o444))
}

func flipByte(off int) func([]byte) []byte {
	return func(b []byte) []byte {
		if off < 0 {
			off = len(b) / 2
		}
		b[off] ^= 0x5a
		return b
	}
}

func truncateTo(frac float64) func([]byte) []byte {
	return func(b []byte) []byte { return b[:int(float64(len(b))*frac)] }
}

// copyTree copies a directory tree (regular files and directories only),
// for cloning a pristine repository.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

// Shared with internal/e2e.
var (
	randBytes   = testutil.RandBytes
	treeDigest  = testutil.TreeDigest
	diffDigests = testutil.DiffDigests
	num         = testutil.Num
	str         = testutil.Str
)

func must(t *testing.T, err error)                     { t.Helper(); testutil.Must(t, err) }
func writeFile(t *testing.T, path string, data []byte) { t.Helper(); testutil.WriteFile(t, path, data) }

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	must(t, err)
	return fi.Size()
}
