package repair_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/checker"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repair"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// world is a repository on an in-memory store whose clock, and the
// clients' local clock, the test moves.
type world struct {
	t     *testing.T
	ns    atomic.Int64
	store *mem.Backend
}

func newWorld(t *testing.T) *world {
	w := &world{t: t}
	w.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	w.store = mem.NewWithClock(w.now)
	_, err := repository.Init(context.Background(), w.store, "pw", repository.Options{KDF: crypto.WeakKDF(), ChunkMin: 256, ChunkAvg: 1024, ChunkMax: 4096, PackSize: 1 << 20})
	check(t, err)
	return w
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (w *world) now() time.Time          { return time.Unix(0, w.ns.Load()) }
func (w *world) advance(d time.Duration) { w.ns.Add(int64(d)) }

func (w *world) open() *repository.Repository {
	w.t.Helper()
	r, err := repository.Open(context.Background(), w.store, "pw", "")
	check(w.t, err)
	r.SetClock(w.now)
	return r
}

// stored is what a backup of the test wrote for one file: the pack of its
// content and the index file naming that pack (each file's content is
// flushed on its own, so a test can lose exactly one).
type stored struct {
	pack, index format.ID
}

// backup commits a snapshot of one directory holding files (name ->
// content, one blob each) and returns it with what it stored per file.
func (w *world) backup(files map[string]string) (*snapshot.Snapshot, map[string]stored) {
	w.t.Helper()
	ctx := context.Background()
	r := w.open()
	sess, _, err := r.BeginWrite(ctx, "test")
	check(w.t, err)
	defer sess.End(ctx)
	out := map[string]stored{}
	var t tree.Tree
	for _, name := range slicesSorted(files) {
		id, _, err := r.SaveBlob(ctx, pack.DataBlob, []byte(files[name]))
		check(w.t, err)
		check(w.t, r.Flush(ctx))
		loc, ok := r.LookupBlob(pack.DataBlob, id)
		if !ok {
			w.t.Fatalf("%s: blob not indexed after flush", name)
		}
		idx := r.Stats().UploadedIndexes
		out[name] = stored{pack: loc.Pack, index: idx[len(idx)-1]}
		t.Nodes = append(t.Nodes, &tree.Node{Name: tree.RawString(name), Type: tree.TypeFile, Mode: 0o644, Size: uint64(len(files[name])), Content: []format.ID{id}})
	}
	b, err := t.Encode()
	check(w.t, err)
	root, _, err := r.SaveBlob(ctx, pack.TreeBlob, b)
	check(w.t, err)
	sn := snapshot.New([]string{"/d"}, nil, "host", w.now())
	sn.Tree = root
	_, err = sess.Commit(ctx, sn)
	check(w.t, err)
	return sn, out
}

func slicesSorted(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

// lose deletes a file's pack and the index file that names it, as 'repair
// index' leaves a repository whose pack was lost.
func (w *world) lose(s stored) {
	w.t.Helper()
	ctx := context.Background()
	check(w.t, w.store.Remove(ctx, storage.Handle{Type: storage.PackFile, Name: pack.Name(s.pack)}))
	check(w.t, w.store.Remove(ctx, storage.Handle{Type: storage.IndexFile, Name: pack.Name(s.index)}))
}

func (w *world) snapshots() []*snapshot.Snapshot {
	w.t.Helper()
	all, errs, err := snapshot.LoadAll(context.Background(), w.open())
	check(w.t, err)
	if len(errs) > 0 {
		w.t.Fatalf("unreadable snapshots: %v", errs)
	}
	return all
}

// contents returns the files of a snapshot and their contents, read back.
func (w *world) contents(sn *snapshot.Snapshot) map[string]string {
	w.t.Helper()
	ctx := context.Background()
	r := w.open()
	check(w.t, r.LoadIndex(ctx, true))
	tb, err := r.LoadBlob(ctx, pack.TreeBlob, sn.Tree, nil)
	check(w.t, err)
	tr, err := tree.Decode(tb)
	check(w.t, err)
	out := map[string]string{}
	for _, n := range tr.Nodes {
		var b []byte
		for _, id := range n.Content {
			c, err := r.LoadBlob(ctx, pack.DataBlob, id, nil)
			if err != nil {
				w.t.Fatalf("snapshot %s file %s: %v", sn.ID.Short(), n.Name, err)
			}
			b = append(b, c...)
		}
		out[string(n.Name)] = string(b)
	}
	return out
}

// checkOK runs check --read-data and fails the test on any harmful problem.
func (w *world) checkOK() {
	w.t.Helper()
	res, err := checker.New(w.open(), checker.Options{ReadData: true}).Run(context.Background())
	check(w.t, err)
	if !res.OK() {
		w.t.Fatalf("check: %v", res.Problems)
	}
}

func (w *world) sessions() []repository.LiveSession {
	w.t.Helper()
	l, err := w.open().Sessions(context.Background())
	check(w.t, err)
	return l
}

// damaged sets up two snapshots: damaged, whose file "lost" lost its
// pack, and intact; it returns them and what damaged stored.
func damaged(w *world) (dmg, intact *snapshot.Snapshot, st map[string]stored) {
	intact, _ = w.backup(map[string]string{"other": "intact content"})
	dmg, st = w.backup(map[string]string{"keep": "kept content", "lost": "lost content"})
	w.lose(st["lost"])
	return dmg, intact, st
}

func TestRepairSnapshots(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       repair.Options
		wantSnaps  int  // after the repair
		wantOrig   bool // the damaged original is still there
		wantNewOne bool // a repaired snapshot was saved
	}{
		{"repair", repair.Options{}, 2, false, true},
		{"keep original", repair.Options{KeepOriginal: true}, 3, true, true},
		{"dry run", repair.Options{DryRun: true}, 2, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t)
			dmg, intact, _ := damaged(w)
			var events []repair.Event
			opts := tc.opts
			opts.Report = func(ev repair.Event) { events = append(events, ev) }
			res, err := repair.Snapshots(ctx, w.open(), opts)
			check(t, err)
			if res.Examined != 2 || res.Repaired != 1 {
				t.Errorf("result %+v, want 2 examined, 1 repaired", res)
			}
			if len(events) != 2 || events[0].Kind != repair.FileLost || events[0].Path != "/lost" || events[0].Snapshot.ID != dmg.ID ||
				events[1].Kind != repair.Repaired || events[1].Snapshot.ID != dmg.ID || (events[1].New != nil) != tc.wantNewOne {
				t.Fatalf("events %+v", events)
			}
			all := w.snapshots()
			if len(all) != tc.wantSnaps {
				t.Fatalf("%d snapshots after the repair, want %d", len(all), tc.wantSnaps)
			}
			byID := map[snapshot.ID]*snapshot.Snapshot{}
			for _, sn := range all {
				byID[sn.ID] = sn
			}
			if _, ok := byID[dmg.ID]; ok != tc.wantOrig {
				t.Errorf("original present: %v, want %v", ok, tc.wantOrig)
			}
			if got := w.contents(byID[intact.ID]); got["other"] != "intact content" {
				t.Errorf("intact snapshot: %v", got)
			}
			if tc.wantNewOne {
				nsn := byID[events[1].New.ID]
				if nsn == nil {
					t.Fatalf("repaired snapshot %s not stored", events[1].New.ID.Short())
				}
				if !slices.Contains(nsn.Tags, repair.Tag) || nsn.Original == nil || *nsn.Original != dmg.ID || !nsn.Time.Equal(dmg.Time) {
					t.Errorf("repaired snapshot: tags %v original %v time %v", nsn.Tags, nsn.Original, nsn.Time)
				}
				if got := w.contents(nsn); len(got) != 1 || got["keep"] != "kept content" {
					t.Errorf("repaired snapshot holds %v, want only keep", got)
				}
			}
			if !tc.wantOrig {
				w.checkOK()
			}
			if s := w.sessions(); len(s) != 0 {
				t.Errorf("session objects left: %v", s)
			}
			// A second repair finds nothing more to do.
			if tc.wantNewOne && !tc.wantOrig {
				res, err := repair.Snapshots(ctx, w.open(), repair.Options{})
				check(t, err)
				if res.Repaired != 0 {
					t.Errorf("second repair: %+v", res)
				}
			}
		})
	}
}

// TestRepairSnapshotsRefusedAfterConcurrentPrune: 'repair snapshots' stalls
// past the session TTL after it has judged the damaged snapshot and before
// it commits the repaired copy. Meanwhile another host forgets the damaged
// snapshot and prunes, deleting (or planning to delete) the pack of the
// file the repaired copy keeps. The repair must refuse to commit: no
// snapshot referencing a pack that is gone is saved, and every snapshot
// left still restores and checks.
func TestRepairSnapshotsRefusedAfterConcurrentPrune(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window time.Duration // the prune's safety window: 0 sweeps at once
		want   string
	}{
		{"pack deleted", 0, "was deleted"},
		{"pack planned", time.Hour, "scheduled for deletion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t)
			dmg, intact, st := damaged(w)
			keptPack := st["keep"].pack
			pruned := false
			opts := repair.Options{Report: func(ev repair.Event) {
				if ev.Kind != repair.FileLost || pruned {
					return
				}
				pruned = true
				// The repair stalls; its session looks dead to the prune.
				w.advance(repository.SessionTTL + time.Minute)
				check(t, snapshot.Remove(ctx, w.open(), dmg.ID))
				res, err := maintenance.Prune(ctx, w.open(), maintenance.Options{SafetyWindow: tc.window})
				check(t, err)
				if res.PacksPlanned == 0 || len(res.WaitingSessions) > 0 {
					t.Fatalf("prune did not plan the forgotten snapshot's packs without waiting: %+v", res)
				}
				_, err = w.store.Stat(ctx, storage.Handle{Type: storage.PackFile, Name: pack.Name(keptPack)})
				if gone := errors.Is(err, storage.ErrNotExist); gone != (tc.window == 0) {
					t.Fatalf("kept file's pack gone: %v (stat: %v)", gone, err)
				}
			}}
			_, err := repair.Snapshots(ctx, w.open(), opts)
			if !pruned {
				t.Fatal("the repair reported no lost file: the prune never ran")
			}
			if !errors.Is(err, repository.ErrStaleSession) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("repair after the stall: %v, want ErrStaleSession saying %q", err, tc.want)
			}
			all := w.snapshots()
			if len(all) != 1 || all[0].ID != intact.ID {
				var ids []string
				for _, sn := range all {
					ids = append(ids, sn.ID.Short()+" "+strings.Join(sn.Tags, ","))
				}
				t.Fatalf("snapshots after the refused repair: %v, want only the intact one", ids)
			}
			if s := w.sessions(); len(s) != 0 {
				t.Errorf("the refused repair left its session: %v", s)
			}
			if got := w.contents(all[0]); got["other"] != "intact content" {
				t.Errorf("intact snapshot: %v", got)
			}
			w.checkOK()
			// Once the planned packs are swept, the repository still checks.
			w.advance(2 * time.Hour)
			_, err = maintenance.Prune(ctx, w.open(), maintenance.Options{SafetyWindow: tc.window})
			check(t, err)
			w.checkOK()
			if got := w.contents(all[0]); got["other"] != "intact content" {
				t.Errorf("intact snapshot after the sweep: %v", got)
			}
		})
	}
}
