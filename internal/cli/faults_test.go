package cli_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/s3"
	"github.com/bunkerbackup/bunker/internal/testsrv"
)

// Fault tests: the command line against real servers (versitygw, sshd)
// reached through a fault-injecting TCP proxy (testsrv.Proxy). They check
// what a user sees when the store dies, is slow and flaky, or refuses the
// credentials, and that every command leaves no goroutine and no open
// connection behind.

// failedOp matches the operation and object an error of a backend names.
var failedOp = regexp.MustCompile(`\b(save|load|stat|list|remove) (config|keys|packs|index|snapshots|sessions|maint)\b`)

// faultEnv is a repository reached through a fault proxy.
type faultEnv struct {
	*repoEnv
	p *testsrv.Proxy
}

// leakCheck makes the test fail if goroutines started after this call
// (other than those of servers and proxies started before it) are still
// running when the test function returns. Call it with defer, after the
// servers and proxies are up.
func leakCheck(t *testing.T) func() {
	t.Helper()
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	return func() {
		t.Helper()
		if t.Failed() {
			return // the failure already says what went wrong
		}
		goleak.VerifyNone(t, opts...)
	}
}

// cmd runs a command expecting exit code want (any non-zero code when
// want < 0), then checks that the command left no connection open at the
// proxy: the CLI closes its backends when a command ends, and closing a
// backend closes its idle connections.
func (f *faultEnv) cmd(want int, args ...string) result {
	f.t.Helper()
	r := f.run(args...)
	switch {
	case want < 0 && r.Code == 0:
		f.t.Fatalf("want a non-zero exit code, got:\n%s", r)
	case want >= 0 && r.Code != want:
		f.t.Fatalf("want exit code %d, got:\n%s", want, r)
	}
	f.expectIdle("bunker " + strings.Join(args, " "))
	return r
}

// expectIdle fails the test unless every connection through the proxy
// is closed soon after a command ended.
func (f *faultEnv) expectIdle(after string) {
	f.t.Helper()
	if !f.p.WaitIdle(10 * time.Second) {
		s := f.p.Stats()
		f.t.Errorf("%s: %d connections still open at the proxy 10 s after the command ended (%+v)", after, s.Open, s)
	}
}

// s3ViaProxy starts versitygw and a proxy in front of it, and returns the
// environment of a repository in a fresh bucket reached through the proxy,
// and the location of the same repository reached directly.
func s3ViaProxy(t *testing.T) (*faultEnv, *testsrv.S3Server, string) {
	t.Helper()
	srv := testsrv.Versitygw(t)
	p := testsrv.NewProxy(t, srv.Endpoint)
	r := remote{
		loc: fmt.Sprintf("s3:http://%s/bunker-faults/repo", p.Addr()),
		env: map[string]string{"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey, "AWS_REGION": srv.Region},
	}
	return &faultEnv{repoEnv: remoteEnv(t, r), p: p}, srv, fmt.Sprintf("http://%s/bunker-faults/repo", srv.Endpoint)
}

// sftpViaProxy starts sshd and a proxy in front of it, and returns the
// environment of a repository reached through the proxy.
func sftpViaProxy(t *testing.T) (*faultEnv, *testsrv.SSHServer) {
	t.Helper()
	srv := testsrv.SSHD(t)
	p := testsrv.NewProxy(t, srv.Addr())
	// The host key is checked against the address dialled: the proxy's.
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(p.Addr())}, srv.HostKeys[0]) + "\n"
	writeFile(t, kh, []byte(line))
	r := remote{
		loc: fmt.Sprintf("sftp://%s@%s%s", srv.User, p.Addr(), filepath.Join(srv.Dir, "repo")),
		env: map[string]string{"BUNKER_SFTP_KEY": srv.KeyFile, "BUNKER_SFTP_KNOWN_HOSTS": kh},
	}
	return &faultEnv{repoEnv: remoteEnv(t, r), p: p}, srv
}

// storedPacks lists the packs of an S3 repository directly (not through
// the proxy), by name with their sizes.
func storedPacks(t *testing.T, srv *testsrv.S3Server, direct string) map[string]int64 {
	t.Helper()
	getenv := func(k string) string {
		return map[string]string{"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey, "AWS_REGION": srv.Region}[k]
	}
	cfg, err := s3.ParseConfig(direct, getenv)
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	be, err := s3.Open(ctx, cfg)
	must(t, err)
	defer func() { _ = be.Close() }()
	packs := map[string]int64{}
	must(t, be.List(ctx, storage.PackFile, func(fi storage.FileInfo) error {
		packs[fi.Name] = fi.Size
		return nil
	}))
	return packs
}

func sumSizes(m map[string]int64) int64 {
	var n int64
	for _, s := range m {
		n += s
	}
	return n
}

// TestFaultServerDiesMidBackup cuts the S3 store off while a backup is
// uploading packs: the backup must fail cleanly, commit nothing, and a
// repeated backup after the store is back must reuse what the first one
// uploaded.
func TestFaultServerDiesMidBackup(t *testing.T) {
	f, srv, direct := s3ViaProxy(t)
	defer leakCheck(t)()
	f.cmd(0, "--insecure-kdf-for-tests", "init", "--pack-size", "1")

	src := filepath.Join(t.TempDir(), "src")
	const fileSize = 3 << 20
	for i := range 4 {
		writeFile(t, filepath.Join(src, fmt.Sprintf("f%d.bin", i)), randBytes(uint64(300+i), fileSize))
	}
	const srcSize = 4 * fileSize

	// Slow the uploads down (32 KiB per 3 ms and connection) so that the
	// cut reliably comes in the middle of the backup.
	f.p.SetLatency(3 * time.Millisecond)
	start := f.p.Stats().BytesToServer
	var (
		wg  sync.WaitGroup
		cut = make(chan int64, 1)
	)
	stopWatch := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if sent := f.p.Stats().BytesToServer - start; sent > srcSize/2 {
				f.p.Refuse(true)
				f.p.DropAll()
				cut <- sent
				return
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	began := time.Now()
	r := f.run("--retry-attempts", "3", "--json", "backup", src)
	took := time.Since(began)
	close(stopWatch)
	wg.Wait()
	var sent int64
	select {
	case sent = <-cut:
	default:
		t.Fatalf("the backup ended before the store was cut off; slow it down more (%+v):\n%s", f.p.Stats(), r)
	}
	t.Logf("cut off after %d KiB sent; backup failed after %v: %s", sent>>10, took.Round(time.Millisecond), strings.TrimSpace(r.Stdout+r.Stderr))
	if r.Code == 0 {
		t.Fatalf("backup succeeded although the store went away:\n%s", r)
	}
	if took > 60*time.Second {
		t.Errorf("backup took %v to give up with --retry-attempts 3", took)
	}
	// With --json the error is a JSON line on stdout.
	msg := str(r.Message(t, "error")["error"])
	for _, want := range []string{"s3:http://" + f.p.Addr() + "/bunker-faults/repo", "gave up after 3 attempts"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if !failedOp.MatchString(msg) {
		t.Errorf("error %q does not name the operation and the object", msg)
	}
	f.expectIdle("the failed backup")

	// The store comes back.
	f.p.Refuse(false)
	f.p.SetLatency(0)
	if n := len(f.snapshots()); n != 0 {
		t.Fatalf("%d snapshots after the failed backup, want none", n)
	}
	f.expectIdle("snapshots")
	before := storedPacks(t, srv, direct)
	kept := sumSizes(before)
	t.Logf("the failed backup left %d packs (%d KiB)", len(before), kept>>10)
	if len(before) == 0 {
		t.Fatalf("no pack was stored before the cut (%d KiB sent): the test proves nothing", sent>>10)
	}

	// The same backup again reuses what is there.
	s, _ := f.backupJSON(0, src)
	f.expectIdle("the second backup")
	after := storedPacks(t, srv, direct)
	for name := range before {
		if _, ok := after[name]; !ok {
			t.Errorf("pack %s of the interrupted backup is gone", name)
		}
	}
	stored, total := num(s["data_added_packed"]), sumSizes(after)
	t.Logf("second backup: stored %d KiB in %d packs; the bucket holds %d packs, %d KiB (source %d KiB)",
		stored>>10, num(s["packs_written"]), len(after), total>>10, int64(srcSize)>>10)
	if stored > srcSize-kept/2 {
		t.Errorf("second backup stored %d KiB although %d KiB of packs were already there: packs of the interrupted backup were not reused", stored>>10, kept>>10)
	}
	if total > srcSize+srcSize/10 {
		t.Errorf("the bucket holds %d KiB of packs for %d KiB of incompressible data: data was uploaded twice", total>>10, int64(srcSize)>>10)
	}

	f.cmd(0, "check", "--read-data")
	out := filepath.Join(t.TempDir(), "out")
	f.cmd(0, "restore", "latest:"+src, "--target", out, "--verify")
	assertSameTree(t, treeDigest(t, src), treeDigest(t, out))
}

// TestFaultSlowFlaky runs a backup and a restore through a slow proxy that
// cuts every second connection (the first of each command among them)
// after a few hundred KiB: the default
// retries make both succeed, and the retries are reported on stderr.
func TestFaultSlowFlaky(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *faultEnv
	}{
		{"s3", func(t *testing.T) *faultEnv { f, _, _ := s3ViaProxy(t); return f }},
		{"sftp", func(t *testing.T) *faultEnv { f, _ := sftpViaProxy(t); return f }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.start(t)
			defer leakCheck(t)()
			f.cmd(0, "--insecure-kdf-for-tests", "init", "--pack-size", "1")
			src := filepath.Join(t.TempDir(), "src")
			writeFile(t, filepath.Join(src, "a.bin"), randBytes(401, 3<<20))
			writeFile(t, filepath.Join(src, "b.bin"), randBytes(402, 2<<20+12345))
			writeFile(t, filepath.Join(src, "dir", "small.txt"), []byte(strings.Repeat("small\n", 100)))

			f.p.SetLatency(time.Millisecond)
			f.p.FailAfter(300 << 10)
			f.p.FailEvery(2)
			before := f.p.Stats()
			r := f.cmd(0, "backup", src)
			mid := f.p.Stats()
			t.Logf("backup: %d connections, %d cut; %d retries logged", mid.Accepted-before.Accepted, mid.Failed-before.Failed, strings.Count(r.Stderr, "retrying"))
			if mid.Failed == before.Failed {
				t.Fatalf("no connection was cut during the backup: the test proves nothing (%+v)", mid)
			}
			if !strings.Contains(r.Stderr, "level=WARN msg=retrying") {
				t.Errorf("the backup's retries were not reported on stderr:\n%s", r)
			}

			f.p.FailEvery(2) // count again: the restore's first connection fails
			out := filepath.Join(t.TempDir(), "out")
			r = f.cmd(0, "--no-cache", "restore", "latest:"+src, "--target", out, "--verify")
			end := f.p.Stats()
			t.Logf("restore: %d connections, %d cut; %d retries logged", end.Accepted-mid.Accepted, end.Failed-mid.Failed, strings.Count(r.Stderr, "retrying"))
			if end.Failed == mid.Failed {
				t.Errorf("no connection was cut during the restore (%+v)", end)
			} else if !strings.Contains(r.Stderr, "level=WARN msg=retrying") {
				t.Errorf("the restore's retries were not reported on stderr:\n%s", r)
			}
			assertSameTree(t, treeDigest(t, src), treeDigest(t, out))

			f.p.FailEvery(0)
			f.p.SetLatency(0)
			f.cmd(0, "check", "--read-data")
		})
	}
}

// TestFaultWrongCredentials checks that credentials the store refuses make
// a command fail at once with a message about credentials, after a
// handful of requests, not a retry storm.
func TestFaultWrongCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		// start returns the environment and the change that makes the
		// credentials wrong.
		start func(t *testing.T) (*faultEnv, map[string]string)
		// maxConns and maxRequests bound what the failing command may
		// send; a retry storm would be ten times as many.
		maxConns, maxRequests int64
	}{
		{"s3-wrong-secret", func(t *testing.T) (*faultEnv, map[string]string) {
			f, srv, _ := s3ViaProxy(t)
			wrong := []byte(srv.SecretKey)
			wrong[0] ^= 1
			return f, map[string]string{"AWS_SECRET_ACCESS_KEY": string(wrong)}
		}, 2, 4},
		{"s3-unknown-key", func(t *testing.T) (*faultEnv, map[string]string) {
			f, _, _ := s3ViaProxy(t)
			return f, map[string]string{"AWS_ACCESS_KEY_ID": "AKIANOSUCHKEY0000000"}
		}, 2, 4},
		{"sftp-unauthorized-key", func(t *testing.T) (*faultEnv, map[string]string) {
			f, srv := sftpViaProxy(t)
			key, _ := srv.NewKey(t, "", false)
			return f, map[string]string{"BUNKER_SFTP_KEY": key}
		}, 2, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, wrong := tc.start(t)
			defer leakCheck(t)()
			f.cmd(0, "--insecure-kdf-for-tests", "init")
			src := filepath.Join(t.TempDir(), "src")
			writeFile(t, filepath.Join(src, "a.txt"), []byte("alpha\n"))
			for k, v := range wrong {
				f.env[k] = v
			}
			for _, args := range [][]string{{"backup", src}, {"snapshots"}} {
				before := f.p.Stats()
				began := time.Now()
				r := f.cmd(-1, args...)
				took := time.Since(began)
				after := f.p.Stats()
				conns, reqs := after.Accepted-before.Accepted, after.ChunksToServer-before.ChunksToServer
				t.Logf("%s: exit %d after %v, %d connections, %d writes: %s", args[0], r.Code, took.Round(time.Millisecond), conns, reqs, strings.TrimSpace(r.Stderr))
				if took > 30*time.Second {
					t.Errorf("%s took %v to fail on refused credentials", args[0], took)
				}
				if !strings.Contains(r.Stderr, "credentials") {
					t.Errorf("the error does not say that the credentials were refused:\n%s", r)
				}
				if !strings.Contains(r.Stderr, f.repo) && !strings.Contains(r.Stderr, f.p.Addr()) {
					t.Errorf("the error does not name the store:\n%s", r)
				}
				if strings.Contains(r.Stderr, "retrying") {
					t.Errorf("refused credentials were retried:\n%s", r)
				}
				if conns > tc.maxConns || reqs > tc.maxRequests {
					t.Errorf("%s made %d connections and %d writes to the store for refused credentials, want at most %d and %d",
						args[0], conns, reqs, tc.maxConns, tc.maxRequests)
				}
			}
		})
	}
}

// TestFaultProxy checks the fault proxy itself against an echo server.
func TestFaultProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = ln.Close() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		var conns sync.WaitGroup
		defer conns.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer func() { _ = c.Close() }()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	p := testsrv.NewProxy(t, ln.Addr().String())
	defer p.Close()
	defer leakCheck(t)()

	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
		must(t, err)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	echo := func(c net.Conn, msg string) error {
		if _, err := io.WriteString(c, msg+"\n"); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if line != msg+"\n" {
			return fmt.Errorf("echo %q, got %q", msg, line)
		}
		return nil
	}

	// Forwarding, latency, counters.
	c := dial()
	p.SetLatency(50 * time.Millisecond)
	began := time.Now()
	must(t, echo(c, "hello"))
	if d := time.Since(began); d < 100*time.Millisecond {
		t.Errorf("echo through 50 ms latency per chunk took %v, want at least 100 ms", d)
	}
	p.SetLatency(0)
	if s := p.Stats(); s.Accepted != 1 || s.Open != 1 || s.BytesToServer != 6 || s.BytesToClient != 6 || s.ChunksToServer != 1 {
		t.Errorf("stats after one echo: %+v", s)
	}

	// DropAll resets open connections.
	p.DropAll()
	if err := echo(c, "again"); err == nil {
		t.Errorf("echo on a dropped connection succeeded")
	}
	_ = c.Close()
	if !p.WaitIdle(5 * time.Second) {
		t.Errorf("proxy not idle after DropAll: %+v", p.Stats())
	}

	// Refuse resets new connections; turning it off again works.
	p.Refuse(true)
	// The reset may come before the dial has even returned.
	if c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second); err == nil {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := echo(c, "refused"); err == nil {
			t.Errorf("echo on a refused connection succeeded")
		}
		_ = c.Close()
	}
	p.Refuse(false)
	c = dial()
	must(t, echo(c, "back"))
	_ = c.Close()

	// FailEvery cuts every n-th connection after FailAfter bytes.
	p.FailAfter(10)
	p.FailEvery(2)
	var cut int
	for i := range 4 {
		c := dial()
		ok := echo(c, "abc") == nil
		if ok {
			ok = echo(c, "defghijk") == nil // 3+1+3+1 + 8+1 > 10 bytes
		}
		_ = c.Close()
		if !ok {
			cut++
			t.Logf("connection %d cut", i)
		}
	}
	p.FailEvery(0)
	if cut != 2 {
		t.Errorf("%d of 4 connections cut with FailEvery(2), want 2", cut)
	}

	// CorruptEvery flips one byte at the offset given, once: the echo
	// server sends the changed byte back unchanged.
	p.CorruptEvery(1, 1)
	c = dial()
	if err := echo(c, "abc"); err == nil || !strings.Contains(err.Error(), `got "a8c\n"`) {
		t.Errorf("echo through a corrupting connection: %v, want b flipped to 8", err)
	}
	must(t, echo(c, "abc")) // only one byte is flipped
	_ = c.Close()
	p.CorruptEvery(0, 0)
	if !p.WaitIdle(5 * time.Second) {
		t.Errorf("proxy not idle: %+v", p.Stats())
	}
	s := p.Stats()
	t.Logf("stats: %+v", s)
	if s.Refused != 1 || s.Failed != 2 || s.Dropped != 1 || s.Corrupted != 1 || s.Open != 0 {
		t.Errorf("stats: %+v", s)
	}
}
