package cli_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bunkerbackup/bunker/internal/cli"
	"github.com/bunkerbackup/bunker/internal/storage/rest"
	"github.com/bunkerbackup/bunker/internal/testsrv"
	"github.com/bunkerbackup/bunker/internal/testutil"
)

// Tests written from the side of two actors of docs/SECURITY.md around
// "bunker serve": a network attacker between a client and the server, and
// a tenant of the server with valid credentials for its own repositories.
// Each does its worst, at random, for several seeds, while a real client
// backs up; afterwards every committed snapshot must restore bit-exactly
// and check --read-data must be clean.

// servedCLI is "bunker serve" running in-process, as the command line
// starts it.
type servedCLI struct {
	addr, fingerprint string
	start             map[string]any // the serving line
	stderr            *serveOutput
}

// serveCLI runs "bunker --json [global...] serve --listen 127.0.0.1:0
// args..." in-process until the test ends, and waits for its serving
// line. The server must stop with exit code 0 when the test cancels it.
func serveCLI(t *testing.T, global []string, args ...string) *servedCLI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &serveOutput{}, &serveOutput{}
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr, Getenv: func(string) string { return "" }}
	full := append(append([]string{"--json"}, global...), append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	code := make(chan int, 1)
	go func() { code <- app.Run(ctx, full) }()
	t.Cleanup(func() {
		cancel()
		select {
		case c := <-code:
			if c != 0 {
				t.Errorf("serve exited with %d after cancellation, want 0:\n%s", c, testutil.Clip(stderr.String(), 4000))
			}
			checkJSONRun(t, full, result{Code: c, Stdout: stdout.String(), Stderr: stderr.String(), Args: full})
		case <-time.After(60 * time.Second):
			t.Errorf("serve did not stop within 60 s of cancellation")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m, ok := testutil.LastMessage(testutil.JSONLines(stdout.String()), "serving"); ok {
			addr := strings.TrimSuffix(strings.TrimPrefix(str(m["url"]), "https://"), "/")
			return &servedCLI{addr: addr, fingerprint: str(m["fingerprint"]), start: m, stderr: stderr}
		}
		select {
		case c := <-code:
			code <- c // for the cleanup
			t.Fatalf("serve exited with %d:\n%s\n%s", c, stdout.String(), stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no serving line within 30 s:\n%s\n%s", stdout.String(), stderr.String())
		}
	}
}

// htpasswdFile writes an htpasswd file (bcrypt) for users.
func htpasswdFile(t *testing.T, users map[string]string) string {
	t.Helper()
	var b strings.Builder
	for u, pw := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		must(t, err)
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	must(t, os.WriteFile(p, []byte(b.String()), 0o600))
	return p
}

// restEnv is the environment of repo (a path such as /alice/r) on a
// served bunker reached at addr (the server's or a proxy's) as user.
func restEnv(t *testing.T, s *servedCLI, addr, user, password, repo string) *repoEnv {
	t.Helper()
	return remoteEnv(t, remote{
		loc: "rest:https://" + user + "@" + addr + repo,
		env: map[string]string{rest.EnvPassword: password, rest.EnvFingerprint: s.fingerprint},
	})
}

// changeTree changes the source tree at random between backups: new
// files, rewritten, appended and removed ones, a changed small file.
func changeTree(t *testing.T, rng *rand.Rand, src string, round int) {
	t.Helper()
	if round == 0 {
		writeFile(t, filepath.Join(src, "big.bin"), randBytes(rng.Uint64(), 1<<20+rng.IntN(1<<20)))
		for i := range 20 {
			writeFile(t, filepath.Join(src, "small", fmt.Sprintf("f%02d.txt", i)), randBytes(rng.Uint64(), rng.IntN(8<<10)))
		}
	}
	for range 1 + rng.IntN(3) {
		switch rng.IntN(4) {
		case 0:
			writeFile(t, filepath.Join(src, fmt.Sprintf("new-%d-%d.bin", round, rng.IntN(1000))), randBytes(rng.Uint64(), rng.IntN(600<<10)))
		case 1:
			writeFile(t, filepath.Join(src, "small", fmt.Sprintf("f%02d.txt", rng.IntN(20))), randBytes(rng.Uint64(), rng.IntN(8<<10)))
		case 2:
			f, err := os.OpenFile(filepath.Join(src, "big.bin"), os.O_APPEND|os.O_WRONLY, 0)
			must(t, err)
			_, err = f.Write(randBytes(rng.Uint64(), rng.IntN(200<<10)))
			must(t, err)
			must(t, f.Close())
		case 3:
			ents, err := os.ReadDir(filepath.Join(src, "small"))
			must(t, err)
			if len(ents) > 1 {
				must(t, os.Remove(filepath.Join(src, "small", ents[rng.IntN(len(ents))].Name())))
			}
		}
	}
	writeFile(t, filepath.Join(src, "round.txt"), []byte(fmt.Sprintf("round %d\n", round)))
}

// netFaults plays the network attacker on p until stop is called: at
// random intervals it adds latency, refuses new connections for a while,
// resets open ones, cuts connections after a random number of bytes and
// flips a byte at a random offset. stop turns every fault off and
// returns what was done.
func netFaults(p *testsrv.Proxy, seed uint64) (stop func() map[string]int) {
	rng := rand.New(rand.NewPCG(seed, 0xfa))
	moves := map[string]int{}
	move := func() {
		switch rng.IntN(7) {
		case 0:
			p.SetLatency(time.Duration(rng.IntN(3000)) * time.Microsecond)
			moves["latency"]++
		case 1:
			p.Refuse(true)
			time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
			p.Refuse(false)
			moves["refuse"]++
		case 2:
			p.DropAll()
			moves["reset"]++
		case 3:
			p.FailAfter(1 + rng.Int64N(1<<20))
			p.FailEvery(1 + rng.IntN(3))
			moves["cut"]++
		case 4:
			p.CorruptEvery(1+rng.IntN(3), rng.Int64N(256<<10))
			moves["corrupt"]++
		case 5, 6:
			p.FailEvery(0)
			p.CorruptEvery(0, 0)
			moves["calm"]++
		}
	}
	// The backup starts slowed down and under a first fault, so that the
	// attacker gets to act even on a small backup.
	p.SetLatency(time.Duration(500+rng.IntN(1500)) * time.Microsecond)
	move()
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		// Bounded in count; each step takes at most 100 ms.
		for range 5000 {
			select {
			case <-done:
				return
			case <-time.After(time.Duration(5+rng.IntN(45)) * time.Millisecond):
			}
			move()
		}
	}()
	return func() map[string]int {
		close(done)
		<-ended
		p.Refuse(false)
		p.FailEvery(0)
		p.CorruptEvery(0, 0)
		p.SetLatency(0)
		return moves
	}
}

// TestNetworkAttackerSeeds puts a network attacker between a backup
// client and "bunker serve" (TLS with the pinned fingerprint): for each
// seed, while the client runs backups of a changing tree, the attacker
// adds latency, refuses and resets connections, cuts them after random
// byte counts and flips bytes in transit. A backup may fail, with an
// error that names the repository, never a panic; with the faults off,
// every snapshot in the repository (also one whose backup reported a
// failure after committing) restores bit-exactly as the tree was at its
// backup, and check --read-data through the server is clean.
func TestNetworkAttackerSeeds(t *testing.T) {
	seeds, rounds := 6, 3
	if testing.Short() {
		seeds = 1
	}
	// Short server timeouts, so that a flipped TLS length byte, which
	// leaves one side waiting for bytes that never come, ends in seconds.
	s := serveCLI(t, nil, "--path", t.TempDir(), "--htpasswd", htpasswdFile(t, map[string]string{"alice": "alice-pw"}),
		"--private-repos", "--idle-timeout", "3s", "--header-timeout", "3s", "--transfer-window", "2s")
	var committed, failed int
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 14))
			p := testsrv.NewProxy(t, s.addr)
			repo := fmt.Sprintf("/alice/net-%d", seed)
			f := &faultEnv{repoEnv: restEnv(t, s, p.Addr(), "alice", "alice-pw", repo), p: p}
			// Not f.cmd: after init (and after snapshots or cat config
			// alone) the rest: client's HTTP/2 connection stays open until
			// the server's idle timeout, although the command closed the
			// backend; the backups, restores and check below are checked.
			f.mustRun("--insecure-kdf-for-tests", "init", "--pack-size", "1")

			src := filepath.Join(t.TempDir(), "src")
			trees := map[string]map[string]string{} // tag → the tree at that backup
			for round := range rounds {
				changeTree(t, rng, src, round)
				tag := fmt.Sprintf("round-%d", round)
				trees[tag] = treeDigest(t, src)
				stop := netFaults(p, rng.Uint64())
				began := time.Now()
				r := f.run("--json", "--retry-attempts", "5", "backup", "--tag", tag, src)
				moves := stop()
				took := time.Since(began)
				st := p.Stats()
				t.Logf("round %d: exit %d after %v; attacker %v; proxy: %d connections, %d refused, %d cut, %d reset, %d bytes flipped",
					round, r.Code, took.Round(time.Millisecond), moves, st.Accepted, st.Refused, st.Failed, st.Dropped, st.Corrupted)
				f.expectIdle("backup " + tag)
				if r.Code == 0 {
					committed++
					continue
				}
				failed++
				if r.Code != cli.ExitError {
					t.Errorf("backup %s under attack: exit %d, want 0 or %d:\n%s", tag, r.Code, cli.ExitError, r)
				}
				msg := str(r.Message(t, "error")["error"])
				t.Logf("round %d failed: %s", round, testutil.Clip(msg, 300))
				if !strings.Contains(msg, "rest:https://alice@"+p.Addr()+repo) {
					t.Errorf("backup %s under attack failed with an error that does not name the repository: %q", tag, msg)
				}
			}

			// The faults are off: every snapshot restores as it was.
			snaps := f.snapshots()
			if len(snaps) > rounds {
				t.Fatalf("%d snapshots after %d backups", len(snaps), rounds)
			}
			for _, sn := range snaps {
				tags, _ := sn["tags"].([]any)
				if len(tags) != 1 || trees[str(tags[0])] == nil {
					t.Fatalf("snapshot %s has tags %v, not one of a backup", str(sn["id"]), tags)
				}
				id := str(sn["id"])
				out := filepath.Join(t.TempDir(), "restore-"+id[:8])
				f.cmd(0, "restore", id+":"+src, "--target", out, "--verify")
				assertSameTree(t, trees[str(tags[0])], treeDigest(t, out))
			}
			f.cmd(0, "check", "--read-data")
		})
	}
	t.Logf("%d backups committed, %d failed under attack", committed, failed)
	if committed == 0 {
		t.Errorf("no backup committed under attack: the restores prove nothing")
	}
}

// tenant is a hostile user of "bunker serve" that speaks raw HTTP/1.1
// over TLS (it needs no pin: it attacks the server, not the other way).
type tenant struct {
	t          *testing.T
	addr, auth string
}

// do sends one raw request: the request line target, extra header lines,
// and body; it closes the connection after at most hangBound. It returns
// the status code, or 0 when the connection ended without a reply.
func (a *tenant) do(method, target, headers string, body []byte) int {
	conn, err := tls.Dial("tcp", a.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return 0
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(tenantHang))
	if !strings.Contains(headers, "Content-Length") {
		headers += fmt.Sprintf("Content-Length: %d\r\n", len(body))
	}
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nConnection: close\r\n%s\r\n", method, target, a.addr, a.auth, headers)
	_, _ = conn.Write(body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// slow sends the headers of a POST claiming claimed bytes, then 100
// bytes, then, when trickle is set, 16 bytes every 50 ms, for up to d;
// then it gives up and closes the connection.
func (a *tenant) slow(path string, claimed int64, trickle bool, d time.Duration) {
	conn, err := tls.Dial("tcp", a.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(tenantHang))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nContent-Length: %d\r\n\r\n%s",
		path, a.addr, a.auth, claimed, strings.Repeat("x", 100))
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
		if trickle {
			if _, err := conn.Write([]byte(strings.Repeat("y", 16))); err != nil {
				return // cut off by the server
			}
		}
	}
}

// tenantHang bounds every connection of the hostile tenant.
const tenantHang = 30 * time.Second

// served request log: "msg=request method=M path=P status=S ... user=U".
// requestLines are the request lines of a server log (serve --json logs
// JSON lines): method, path, status and user each.
func requestLines(log string) [][4]string {
	var out [][4]string
	for _, m := range testutil.JSONLines(log) {
		if m["msg"] == "request" {
			out = append(out, [4]string{fmt.Sprint(m["method"]), fmt.Sprint(m["path"]), fmt.Sprint(m["status"]), fmt.Sprint(m["user"])})
		}
	}
	return out
}

// TestTenantAttackerSeeds runs "bunker serve --private-repos" with two
// users. For each seed, alice (the hostile tenant) attacks with raw HTTP
// from several goroutines at random: POSTs that claim large bodies and
// stall, trickled bodies, bursts of parallel requests, requests for bob's
// repository, path tricks (.., encoded slashes, absolute paths, absolute
// URLs), huge and malformed Content-Lengths, DELETEs. Meanwhile bob (the
// victim) runs real backups through the rest: backend: all succeed, every
// snapshot restores bit-exactly, check --read-data is clean, no request
// of alice for bob's paths succeeded, nothing was created outside the
// served directory or outside the two users' directories, and bob's
// repository holds exactly the objects bob wrote (from the server's
// request log).
func TestTenantAttackerSeeds(t *testing.T) {
	seeds := 4
	if testing.Short() {
		seeds = 1
	}
	users := map[string]string{"alice": "alice-pw", "bob": "bob-pw"}
	pwfile := htpasswdFile(t, users)
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 1414))
			root := t.TempDir()
			served, outside := filepath.Join(root, "served"), filepath.Join(root, "outside")
			must(t, os.MkdirAll(outside, 0o700))
			s := serveCLI(t, []string{"-vv"}, "--path", served, "--htpasswd", pwfile, "--private-repos",
				"--max-request-size", "8MiB", "--max-concurrent", "16",
				"--transfer-window", "1s", "--min-transfer-rate", "16KiB")
			bob := restEnv(t, s, s.addr, "bob", "bob-pw", "/bob/repo")
			bob.mustRun("--insecure-kdf-for-tests", "init", "--pack-size", "1")
			a := &tenant{t: t, addr: s.addr, auth: base64.StdEncoding.EncodeToString([]byte("alice:alice-pw"))}
			if c := a.do("POST", "/alice/r/?create=true", "", nil); c != 200 {
				t.Fatalf("alice creates her repository: %d", c)
			}

			hexName := func(r *rand.Rand) string {
				return fmt.Sprintf("%016x%016x%016x%016x", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
			}
			// crossTenant is the i-th of 8 requests for bob's repository.
			crossTenant := func(i int, r *rand.Rand) (string, string, string) {
				switch i {
				case 0:
					return "GET", "/bob/repo/config", ""
				case 1:
					return "GET", "/bob/repo/keys/", ""
				case 2:
					return "HEAD", "/bob/repo/config", ""
				case 3:
					return "POST", "/bob/repo/snapshots/" + hexName(r), ""
				case 4:
					return "DELETE", "/bob/repo/config", ""
				case 5:
					return "DELETE", "/bob/repo/packs/" + hexName(r), ""
				case 6:
					return "POST", "/bob/repo/?create=true", ""
				default:
					return "GET", "/bob/repo/", ""
				}
			}
			tricks := []string{
				"/alice/../bob/repo/config", "/alice/%2e%2e/bob/repo/config", "/alice%2f..%2fbob/repo/config",
				"/alice/r/..%2f..%2fbob%2frepo/config", "//bob/repo/config", "/alice//bob/repo/config",
				"/alice/r/keys/..%2f..%2f..%2f..%2foutside%2fx", "/alice/../../outside/config",
				"/%2e%2e/outside/config", outside + "/config", "/alice/r/keys/%00", `/alice\..\bob/repo/config`,
				"/alice/r/config%2f..%2f..%2f..%2fbob%2frepo%2fconfig", "https://" + s.addr + "/bob/repo/config",
				"/alice/../outside/?create=true", "/alice/r/keys/" + strings.Repeat("a", 3000),
			}

			var (
				mu      sync.Mutex
				moves   = map[string]int{}
				wrongly []string
			)
			note := func(move, what string, code int, ok bool) {
				mu.Lock()
				defer mu.Unlock()
				moves[move]++
				if !ok {
					wrongly = append(wrongly, fmt.Sprintf("%s %s: %d", move, what, code))
				}
			}
			done := make(chan struct{})
			var wg sync.WaitGroup
			// One worker tries every path trick and every request for
			// bob's repository once, in a random order at random times.
			sweep := rand.New(rand.NewPCG(rng.Uint64(), 99))
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := sweep
				for i, k := range r.Perm(len(tricks) + 8) {
					if i%4 == 0 {
						time.Sleep(time.Duration(r.IntN(200)) * time.Millisecond)
					}
					m := []string{"GET", "POST", "DELETE", "HEAD"}[r.IntN(4)]
					if k < len(tricks) {
						c := a.do(m, tricks[k], "", []byte("planted by alice"))
						note("path trick", m+" "+tricks[k], c, c >= 400 && c != 500 || c == 0)
						continue
					}
					m, p, h := crossTenant(k-len(tricks), r)
					c := a.do(m, p, h, []byte("planted by alice"))
					note("cross-tenant", m+" "+p, c, c == 403 || c == 503)
				}
			}()
			for w := range 4 {
				r := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
				wg.Add(1)
				go func() {
					defer wg.Done()
					deadline := time.Now().Add(2 * time.Minute)
					for i := 0; i < 200 && time.Now().Before(deadline); i++ {
						select {
						case <-done:
							return
						case <-time.After(time.Duration(r.IntN(30)) * time.Millisecond):
						}
						switch r.IntN(8) {
						case 0:
							a.slow("/alice/r/packs/"+hexName(r), 1+r.Int64N(8<<20), false, time.Duration(r.IntN(1500))*time.Millisecond)
							note("stall", "", 0, true)
						case 1:
							a.slow("/alice/r/packs/"+hexName(r), 1<<20+r.Int64N(7<<20), true, time.Duration(r.IntN(2000))*time.Millisecond)
							note("trickle", "", 0, true)
						case 2:
							var pw sync.WaitGroup
							for range 4 + r.IntN(12) {
								pw.Add(1)
								go func() {
									defer pw.Done()
									c := a.do("GET", "/alice/r/keys/", "", nil)
									note("parallel", "GET /alice/r/keys/", c, c == 200 || c == 503 || c == 0)
								}()
							}
							pw.Wait()
						case 3:
							m, p, h := crossTenant(r.IntN(8), r)
							c := a.do(m, p, h, []byte("planted by alice"))
							note("cross-tenant", m+" "+p, c, c == 403 || c == 503)
						case 4:
							m := []string{"GET", "POST", "DELETE", "HEAD"}[r.IntN(4)]
							p := tricks[r.IntN(len(tricks))]
							c := a.do(m, p, "", []byte("planted by alice"))
							note("path trick", m+" "+p, c, c >= 400 && c != 500 || c == 0)
						case 5:
							cl := []string{"9223372036854775807", "99999999999999999999", "-1", "1099511627776", "8388609", "1, 2"}[r.IntN(6)]
							c := a.do("POST", "/alice/r/packs/"+hexName(r), "Content-Length: "+cl+"\r\n", nil)
							note("huge length", cl, c, c >= 400 && c != 500 || c == 0)
						case 6:
							p := []string{"/alice/r/config", "/alice/r/keys/" + hexName(r), "/bob/repo/config", "/bob/repo/index/" + hexName(r), "/bob/repo/"}[r.IntN(5)]
							c := a.do("DELETE", p, "", nil)
							note("delete", p, c, !strings.HasPrefix(p, "/bob/") || c == 403 || c == 503)
						case 7:
							body := randBytes(r.Uint64(), r.IntN(256<<10))
							c := a.do("POST", "/alice/r/packs/"+hexName(r), "", body)
							note("own write", "", c, c == 200 || c == 503 || c == 0)
						}
					}
				}()
			}

			src := filepath.Join(t.TempDir(), "src")
			trees := map[string]map[string]string{}
			total := func() (n int) {
				mu.Lock()
				defer mu.Unlock()
				for _, k := range moves {
					n += k
				}
				return n
			}
			for round := range 3 {
				changeTree(t, rng, src, round)
				tag := fmt.Sprintf("round-%d", round)
				trees[tag] = treeDigest(t, src)
				bob.mustRun("backup", "--tag", tag, src)
				// Let the attack go on between backups too, so that every
				// seed sees a good part of it (bounded: only to spread it).
				for wait := time.Now().Add(10 * time.Second); total() < 40*(round+1) && time.Now().Before(wait); {
					time.Sleep(20 * time.Millisecond)
				}
			}
			close(done)
			wg.Wait()
			t.Logf("alice's moves: %v", moves)
			for _, w := range wrongly {
				t.Errorf("alice's request was not refused as it should be: %s", w)
			}

			snaps := bob.snapshots()
			if len(snaps) != len(trees) {
				t.Fatalf("%d snapshots, want %d", len(snaps), len(trees))
			}
			for _, sn := range snaps {
				tags, _ := sn["tags"].([]any)
				if len(tags) != 1 || trees[str(tags[0])] == nil {
					t.Fatalf("snapshot %s has tags %v, not one of bob's backups", str(sn["id"]), tags)
				}
				out := filepath.Join(t.TempDir(), "restore")
				bob.mustRun("restore", str(sn["id"])+":"+src, "--target", out, "--verify")
				assertSameTree(t, trees[str(tags[0])], treeDigest(t, out))
			}
			bob.mustRun("check", "--read-data")

			// Nothing outside the served directory, nothing in it beside
			// the two users' directories and the server's own state.
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Errorf("%d entries appeared in a directory next to the served one", len(ents))
			}
			for _, dir := range []string{root, served} {
				ents, err := os.ReadDir(dir)
				must(t, err)
				for _, e := range ents {
					if !map[string]bool{"served": dir == root, "outside": dir == root, "alice": dir == served, "bob": dir == served, ".bunker-serve": dir == served}[e.Name()] {
						t.Errorf("unexpected %s in %s", e.Name(), dir)
					}
				}
			}
			// bob's repository holds what bob wrote, according to the
			// server's request log, and nothing else.
			wrote := map[string]bool{}
			for _, m := range requestLines(s.stderr.String()) {
				method, path, status, user := m[0], m[1], m[2], m[3]
				if !strings.HasPrefix(path, "/bob/") || !strings.HasPrefix(status, "2") {
					continue
				}
				if user != "bob" {
					t.Errorf("the server log shows %s %s by %q with status %s", method, path, user, status)
					continue
				}
				obj, ok := strings.CutPrefix(path, "/bob/repo/")
				if !ok || obj == "" {
					continue
				}
				switch method {
				case "POST":
					wrote[obj] = true
				case "DELETE":
					delete(wrote, obj)
				}
			}
			if len(wrote) == 0 {
				t.Fatalf("no request of bob in the server log: the comparison proves nothing")
			}
			var extra []string
			must(t, filepath.WalkDir(filepath.Join(served, "bob"), func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(filepath.Join(served, "bob", "repo"), p)
				parts := strings.Split(filepath.ToSlash(rel), "/")
				obj := strings.Join(parts, "/")
				if len(parts) == 3 && parts[0] == "packs" {
					obj = "packs/" + parts[2]
				}
				if !wrote[obj] {
					extra = append(extra, rel)
				}
				delete(wrote, obj)
				return nil
			}))
			if len(extra) > 0 {
				t.Errorf("bob's repository holds objects bob did not write: %v", extra)
			}
			if len(wrote) > 0 {
				t.Errorf("objects bob wrote are missing from his repository: %v", slices.Sorted(maps.Keys(wrote)))
			}
		})
	}
}
