package repository_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/storage"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// commitWorld is a repository on an in-memory store whose clock, and the
// writers' local clock, the test moves.
type commitWorld struct {
	t     *testing.T
	ns    atomic.Int64
	store *mem.Backend
}

func newCommitWorld(t *testing.T) *commitWorld {
	w := &commitWorld{t: t}
	w.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	w.store = mem.NewWithClock(w.now)
	_, err := repository.Init(context.Background(), w.store, "pw", repository.Options{KDF: crypto.WeakKDF(), ChunkMin: 256, ChunkAvg: 1024, ChunkMax: 4096, PackSize: 1 << 20})
	check(t, err)
	return w
}

func (w *commitWorld) now() time.Time          { return time.Unix(0, w.ns.Load()) }
func (w *commitWorld) advance(d time.Duration) { w.ns.Add(int64(d)) }

// open opens the repository on be (the store when nil).
func (w *commitWorld) open(be storage.Backend) *repository.Repository {
	w.t.Helper()
	if be == nil {
		be = w.store
	}
	r, err := repository.Open(context.Background(), be, "pw", "")
	check(w.t, err)
	r.SetClock(w.now)
	return r
}

// write stores one file of content and its tree, unflushed, and returns a
// snapshot of it ready to commit.
func (w *commitWorld) write(r *repository.Repository, content string) *snapshot.Snapshot {
	w.t.Helper()
	ctx := context.Background()
	id, _, err := r.SaveBlob(ctx, pack.DataBlob, []byte(content))
	check(w.t, err)
	tr := &tree.Tree{Nodes: []*tree.Node{{Name: "f", Type: tree.TypeFile, Mode: 0o644, Size: uint64(len(content)), Content: []format.ID{id}}}}
	b, err := tr.Encode()
	check(w.t, err)
	root, _, err := r.SaveBlob(ctx, pack.TreeBlob, b)
	check(w.t, err)
	sn := snapshot.New([]string{"/f"}, nil, "host", w.now())
	sn.Tree = root
	return sn
}

// snapshots returns the IDs of the stored snapshots.
func (w *commitWorld) snapshots() []snapshot.ID {
	w.t.Helper()
	all, errs, err := snapshot.LoadAll(context.Background(), w.open(nil))
	check(w.t, err)
	if len(errs) > 0 {
		w.t.Fatalf("unreadable snapshots: %v", errs)
	}
	var out []snapshot.ID
	for _, sn := range all {
		out = append(out, sn.ID)
	}
	return out
}

// sessions returns the names of the stored session objects.
func (w *commitWorld) sessions() []string {
	w.t.Helper()
	l, err := w.open(nil).Sessions(context.Background())
	check(w.t, err)
	var out []string
	for _, s := range l {
		out = append(out, s.Name)
	}
	return out
}

// TestSessionCommit: Commit flushes what the writer left buffered, saves
// the snapshot and ends the session; the session cannot commit again.
func TestSessionCommit(t *testing.T) {
	ctx := context.Background()
	w := newCommitWorld(t)
	r := w.open(nil)
	sess, _, err := r.BeginWrite(ctx, "test")
	check(t, err)
	sn := w.write(r, "some content") // no Flush: Commit does it
	id, err := sess.Commit(ctx, sn)
	check(t, err)
	if id.IsZero() || sn.ID != id {
		t.Fatalf("Commit returned %s, snapshot ID %s", id.Short(), sn.ID.Short())
	}
	if got := w.snapshots(); len(got) != 1 || got[0] != id {
		t.Fatalf("stored snapshots %v, want [%s]", got, id.Short())
	}
	// Everything the snapshot references is durable and indexed.
	rd := w.open(nil)
	check(t, rd.LoadIndex(ctx, true))
	tb, err := rd.LoadBlob(ctx, pack.TreeBlob, sn.Tree, nil)
	check(t, err)
	tr, err := tree.Decode(tb)
	check(t, err)
	if b, err := rd.LoadBlob(ctx, pack.DataBlob, tr.Nodes[0].Content[0], nil); err != nil || string(b) != "some content" {
		t.Fatalf("data blob after commit: %q, %v", b, err)
	}
	if s := w.sessions(); len(s) != 0 {
		t.Fatalf("session objects left after Commit: %v", s)
	}
	check(t, sess.End(ctx)) // idempotent: the deferred End of a writer
	if _, err := sess.Commit(ctx, w.write(r, "more")); !errors.Is(err, repository.ErrSessionEnded) {
		t.Fatalf("second Commit: %v, want ErrSessionEnded", err)
	}
	if got := w.snapshots(); len(got) != 1 {
		t.Fatalf("a commit after the end stored a snapshot: %v", got)
	}
}

// TestSessionCommitAndContinue: several snapshots in one session, which
// stays until End.
func TestSessionCommitAndContinue(t *testing.T) {
	ctx := context.Background()
	w := newCommitWorld(t)
	r := w.open(nil)
	sess, _, err := r.BeginWrite(ctx, "test")
	check(t, err)
	for _, c := range []string{"one", "two"} {
		if _, err := sess.CommitAndContinue(ctx, w.write(r, c)); err != nil {
			t.Fatal(err)
		}
		if s := w.sessions(); len(s) != 1 || s[0] != sess.Name {
			t.Fatalf("sessions after CommitAndContinue: %v, want [%s]", s, sess.Name)
		}
	}
	check(t, sess.End(ctx))
	if n := len(w.snapshots()); n != 2 {
		t.Fatalf("%d snapshots, want 2", n)
	}
	if s := w.sessions(); len(s) != 0 {
		t.Fatalf("session objects left after End: %v", s)
	}
}

// TestSessionCommitRefusedAfterStall: a writer stalls past the session TTL
// while a concurrent forget and prune delete (or plan to delete) the pack
// of a blob it deduplicated against. Its commit check fails, no snapshot is
// saved, and the session is ended and cannot commit again.
func TestSessionCommitRefusedAfterStall(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window time.Duration // prune's safety window: 0 sweeps at once
		want   string
	}{
		{"pack deleted", 0, "was deleted"},
		{"pack planned", time.Hour, "scheduled for deletion"},
	} {
		for _, method := range []string{"Commit", "CommitAndContinue"} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				ctx := context.Background()
				w := newCommitWorld(t)
				// An earlier backup stores the content.
				r0 := w.open(nil)
				s0, _, err := r0.BeginWrite(ctx, "test")
				check(t, err)
				old, err := s0.Commit(ctx, w.write(r0, "shared content"))
				check(t, err)

				r := w.open(nil)
				sess, _, err := r.BeginWrite(ctx, "test")
				check(t, err)
				sn := w.write(r, "shared content") // deduplicated: relies on the old pack
				w.advance(repository.SessionTTL + time.Minute)
				// Meanwhile the old snapshot is forgotten and pruned; the
				// stalled writer's session looks dead.
				check(t, snapshot.Remove(ctx, w.open(nil), old))
				res, err := maintenance.Prune(ctx, w.open(nil), maintenance.Options{SafetyWindow: tc.window})
				check(t, err)
				if res.PacksPlanned == 0 || len(res.WaitingSessions) > 0 {
					t.Fatalf("prune did not plan the old packs without waiting: %+v", res)
				}
				commit := sess.Commit
				if method == "CommitAndContinue" {
					commit = sess.CommitAndContinue
				}
				_, err = commit(ctx, sn)
				if !errors.Is(err, repository.ErrStaleSession) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("commit after the stall: %v, want ErrStaleSession saying %q", err, tc.want)
				}
				if got := w.snapshots(); len(got) != 0 {
					t.Fatalf("a refused commit stored snapshots %v", got)
				}
				if s := w.sessions(); len(s) != 0 {
					t.Fatalf("a refused commit left its session: %v", s)
				}
				if _, err := sess.CommitAndContinue(ctx, sn); !errors.Is(err, repository.ErrSessionEnded) {
					t.Fatalf("commit after a refused commit: %v, want ErrSessionEnded", err)
				}
			})
		}
	}
}

// TestSessionCommitCancelled: a commit whose context is cancelled fails,
// stores no snapshot, and still removes its session object.
func TestSessionCommitCancelled(t *testing.T) {
	w := newCommitWorld(t)
	r := w.open(nil)
	sess, _, err := r.BeginWrite(context.Background(), "test")
	check(t, err)
	sn := w.write(r, "content")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sess.Commit(ctx, sn); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Commit: %v, want context.Canceled", err)
	}
	if got := w.snapshots(); len(got) != 0 {
		t.Fatalf("a cancelled commit stored snapshots %v", got)
	}
	if s := w.sessions(); len(s) != 0 {
		t.Fatalf("a cancelled commit left its session: %v", s)
	}
}

// failSessionRemove fails removing session objects.
type failSessionRemove struct{ storage.Backend }

var errRemove = errors.New("remove refused")

func (f failSessionRemove) Remove(ctx context.Context, h storage.Handle) error {
	if h.Type == storage.SessionFile {
		return errRemove
	}
	return f.Backend.Remove(ctx, h)
}

// TestSessionCommitEndFails: the snapshot is committed even if its session
// object cannot be removed; End reports that to the writer.
func TestSessionCommitEndFails(t *testing.T) {
	ctx := context.Background()
	w := newCommitWorld(t)
	r := w.open(failSessionRemove{w.store})
	sess, _, err := r.BeginWrite(ctx, "test")
	check(t, err)
	if _, err := sess.Commit(ctx, w.write(r, "content")); err != nil {
		t.Fatalf("Commit failed for the session object: %v", err)
	}
	if n := len(w.snapshots()); n != 1 {
		t.Fatalf("%d snapshots, want 1", n)
	}
	if err := sess.End(ctx); !errors.Is(err, errRemove) {
		t.Fatalf("End after Commit: %v, want the removal error", err)
	}
}
