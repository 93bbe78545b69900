package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testSeed returns the seed for randomized tests: BUNKER_E2E_SEED if set,
// else one derived from the clock. It is logged so a failure can be rerun.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BUNKER_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("BUNKER_E2E_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (rerun with BUNKER_E2E_SEED=%d)", seed, seed)
	return seed
}

// changingTree is a source tree that changes between backups.
type changingTree struct {
	t    *testing.T
	dir  string
	rng  *rand.Rand
	next int
}

func newChangingTree(t *testing.T, dir string, rng *rand.Rand) *changingTree {
	c := &changingTree{t: t, dir: dir, rng: rng}
	for i := 0; i < 10; i++ {
		c.add()
	}
	writeFile(t, filepath.Join(dir, "constant", "same.bin"), randBytes(999, 600<<10)) // shared by every snapshot
	return c
}

func (c *changingTree) add() {
	c.next++
	sub := fmt.Sprintf("d%d", c.next%3)
	size := 20<<10 + c.rng.IntN(400<<10)
	if c.rng.IntN(4) == 0 {
		size = 1<<20 + c.rng.IntN(1<<20)
	}
	writeFile(c.t, filepath.Join(c.dir, sub, fmt.Sprintf("f%03d.bin", c.next)), randBytes(c.rng.Uint64(), size))
}

func (c *changingTree) files() []string {
	var out []string
	for p, v := range digest(c.t, c.dir) {
		if v != "d" && !strings.HasPrefix(p, "constant") {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// mutate modifies, appends to, deletes and adds files.
func (c *changingTree) mutate() {
	files := c.files()
	c.rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	for i, f := range files {
		p := filepath.Join(c.dir, f)
		switch {
		case i < 2: // rewrite, sometimes big, so that backups take a while
			writeFile(c.t, p, randBytes(c.rng.Uint64(), 10<<10+c.rng.IntN(3<<20)))
		case i < 3: // append
			fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			must(c.t, err)
			_, err = fh.Write(randBytes(c.rng.Uint64(), 5000))
			must(c.t, err)
			must(c.t, fh.Close())
		case i < 4: // delete
			must(c.t, os.Remove(p))
		}
	}
	c.add()
}

// TestConcurrentBackupsAndPrune is acceptance criterion 3: two backups of
// different trees and a forget --prune run at once, round after round; after
// every round the repository checks clean and every snapshot restores to
// exactly what was backed up.
func TestConcurrentBackupsAndPrune(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	r := initRepo(t, "--pack-size", "1")
	base := t.TempDir()
	trees := []*changingTree{
		newChangingTree(t, filepath.Join(base, "srcA"), rng),
		newChangingTree(t, filepath.Join(base, "srcB"), rng),
	}
	// What each snapshot must restore to: snapshot ID -> source and digest.
	type state struct {
		src    string
		digest map[string]string
	}
	states := map[string]state{}
	const rounds = 8
	deferred := 0 // rounds in which prune had to wait for a running backup
	for round := 0; round < rounds; round++ {
		for _, tr := range trees {
			tr.mutate()
		}
		digests := []map[string]string{digest(t, trees[0].dir), digest(t, trees[1].dir)}

		var wg sync.WaitGroup
		results := make([]result, 3)
		for i := range trees {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				results[i] = r.run("--json", "backup", trees[i].dir)
			}(i)
		}
		wg.Add(1)
		waitForSession := round%2 == 1
		jitter := time.Duration(rng.IntN(100)) * time.Millisecond
		go func() {
			defer wg.Done()
			if waitForSession {
				// Start prune while a backup is known to be running.
				deadline := time.Now().Add(5 * time.Second)
				for len(repoFiles(t, r.dir, "sessions")) == 0 && time.Now().Before(deadline) {
					time.Sleep(2 * time.Millisecond)
				}
			} else {
				time.Sleep(jitter)
			}
			results[2] = r.run("--json", "forget", "--keep-last", "2", "--prune")
		}()
		wg.Wait()
		for i, res := range results {
			if res.Code != 0 {
				t.Fatalf("round %d: process %d failed:\n%s", round, i, res)
			}
		}
		t.Logf("round %d: backups took %v and %v, forget --prune %v", round, results[0].Dur.Round(time.Millisecond), results[1].Dur.Round(time.Millisecond), results[2].Dur.Round(time.Millisecond))
		for i := range trees {
			id := str(results[i].Message(t, "summary")["snapshot_id"])
			states[id] = state{src: trees[i].dir, digest: digests[i]}
		}
		for _, m := range results[2].JSONLines() {
			if m["message_type"] == "prune" {
				res, _ := m["result"].(map[string]any)
				if num(res["packs_planned"]) > 0 && num(res["plans_swept"]) == 0 || num(res["plans_waiting"]) > 0 {
					deferred++ // prune met a live backup session
				}
				t.Logf("round %d prune: planned %v deleted %v repacked %v swept %v waiting %v", round, res["packs_planned"], res["packs_deleted"], res["blobs_repacked"], res["plans_swept"], res["plans_waiting"])
			}
		}

		if res := r.run("check"); res.Code != 0 {
			t.Fatalf("round %d: check failed:\n%s", round, res)
		}
		ids := r.snapshotIDs()
		for _, id := range ids {
			st, ok := states[id]
			if !ok {
				t.Fatalf("round %d: unknown snapshot %s", round, id)
			}
			dst := filepath.Join(t.TempDir(), "restore")
			res := r.run("restore", id+":"+st.src, "--target", dst, "--verify")
			if res.Code != 0 {
				t.Fatalf("round %d: snapshot %.8s does not restore:\n%s", round, id, res)
			}
			if d := diffDigest(st.digest, digest(t, dst)); len(d) > 0 {
				t.Fatalf("round %d: snapshot %.8s restores differently from what was backed up: %v", round, id, d)
			}
			must(t, os.RemoveAll(dst))
		}
		t.Logf("round %d: %d snapshots verified", round, len(ids))
	}
	t.Logf("prune deferred deletion for a running backup in %d of %d rounds", deferred, rounds)
	// A final prune without concurrent writers sweeps what waited, and the
	// data still reads back.
	r.mustRun("prune")
	r.mustRun("check", "--read-data")
	if n := len(r.snapshotIDs()); n > 2*2+2 {
		t.Errorf("%d snapshots left after forget --keep-last 2 every round", n)
	}
}
