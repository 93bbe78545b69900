package cli_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
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
		case <-time.After(60 * time.Second):
			t.Errorf("serve did not stop within 60 s of cancellation")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m, ok := testutil.LastMessage(testutil.JSONLines(stdout.String()), "serving"); ok {
			addr := strings.TrimSuffix(strings.TrimPrefix(str(m["url"]), "https://"), "/")
			return &servedCLI{addr: addr, fingerprint: str(m["fingerprint"]), stderr: stderr}
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
			// Not f.cmd: after init the rest: client's HTTP/2 connection
			// stays open until the server's idle timeout (see the report
			// of issue 14); the backups below are checked.
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
