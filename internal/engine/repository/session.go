package repository

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/storage"
)

// Timing of the lock-free maintenance protocol (see docs/FORMAT.md,
// "Concurrency").
const (
	// SessionRefresh is how often a writer rewrites its session object.
	SessionRefresh = 2 * time.Minute
	// SessionTTL is how long after its last refresh (store time) a session
	// counts as dead.
	SessionTTL = 15 * time.Minute
)

// SessionInfo is the sealed content of a session object. Times in it are
// the client's and informational only; liveness uses the store's mtime.
type SessionInfo struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Started time.Time `json:"started"`
	// FirstSeen is the store's time of the session object's first write,
	// read back by the writer and written into every later refresh. A
	// sweep uses it to tell writers that began before a plan was visible
	// (and must be waited for) from those that read the plan. Plans list
	// sessions too, but a plan may be planted by anyone who can write the
	// store; a writer's own session object cannot be altered by others.
	FirstSeen time.Time `json:"first_seen,omitzero"`
}

// Session marks a writer as in progress so that maintenance does not
// delete what it may depend on. It is the writer's transaction: BeginWrite
// starts it, the writer saves blobs, and Commit (or CommitAndContinue, for
// several snapshots) flushes, checks, saves the snapshot and ends it. A
// writer defers End so that every other path ends the session too.
type Session struct {
	r    *Repository
	Name string
	info SessionInfo

	mu          sync.Mutex
	lastRefresh time.Time // local monotonic time of the last successful write
	lapsed      bool      // a lapse was ever seen: the commit check is due
	stop        chan struct{}
	done        chan struct{}
	ended       bool

	endOnce sync.Once
	endErr  error // of removing the session object; returned by every End
}

// StartSession writes a session object and keeps refreshing it until End.
// Call it before loading the index.
func (r *Repository) StartSession(ctx context.Context, command string) (*Session, error) {
	host, _ := os.Hostname()
	s := &Session{
		r:    r,
		Name: "s-" + hex.EncodeToString(crypto.Random(12)),
		info: SessionInfo{Host: host, PID: os.Getpid(), Command: command, Started: r.now().UTC()},
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if err := s.write(ctx); err != nil {
		return nil, err
	}
	fi, err := r.be.Stat(ctx, storage.Handle{Type: storage.SessionFile, Name: s.Name})
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	s.info.FirstSeen = fi.ModTime.UTC()
	if err := s.write(ctx); err != nil {
		return nil, err
	}
	r.session = s
	go s.refresher()
	return s, nil
}

func (s *Session) write(ctx context.Context) error {
	t := s.r.now()
	s.mu.Lock()
	if !s.lastRefresh.IsZero() && t.Sub(s.lastRefresh) > lapseAfter {
		s.lapsed = true // remembered even after this refresh succeeds
	}
	s.mu.Unlock()
	if err := s.r.SaveJSONNamed(ctx, storage.SessionFile, s.Name, s.info, storage.SaveOptions{}); err != nil {
		return fmt.Errorf("session: %w", err)
	}
	s.mu.Lock()
	s.lastRefresh = t
	s.mu.Unlock()
	return nil
}

func (s *Session) refresher() {
	defer close(s.done)
	tick := time.NewTicker(SessionRefresh)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), SessionRefresh)
			if err := s.write(ctx); err != nil {
				s.r.log.Warn("could not refresh session", "session", s.Name, "err", err)
			}
			cancel()
		}
	}
}

// Lapsed reports whether the session may have expired in the store's eyes
// at any time: no successful refresh for longer than SessionTTL minus a
// margin (a suspended laptop, a long network outage). Once true it stays
// true. A lapsed writer must run the commit check before committing.
func (s *Session) Lapsed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.r.now().Sub(s.lastRefresh) > lapseAfter {
		s.lapsed = true
	}
	return s.lapsed
}

// lapseAfter is how long without a successful refresh makes a session
// count as lapsed: well before the store may consider it expired.
const lapseAfter = SessionTTL - 3*SessionRefresh

// End stops refreshing and removes the session object. It may be called
// any number of times (a writer defers it so that every path ends the
// session, Commit calls it too); every call returns the outcome of the
// first, which is the only one that does anything.
func (s *Session) End(ctx context.Context) error {
	s.endOnce.Do(func() {
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
		close(s.stop)
		<-s.done
		s.endErr = s.r.be.Remove(ctx, storage.Handle{Type: storage.SessionFile, Name: s.Name})
	})
	return s.endErr
}

// LiveSession is a session object seen in the store.
type LiveSession struct {
	Name    string
	ModTime time.Time // store time of the last refresh
}

// FirstSeen returns the store time at which the session's writer began,
// as recorded in the session object; zero if the object does not say
// (written by an older bunker, not yet refreshed, or unreadable), which a
// caller must treat as "maybe before anything".
func (r *Repository) FirstSeen(ctx context.Context, name string) (time.Time, error) {
	var info SessionInfo
	err := r.LoadJSON(ctx, storage.SessionFile, name, &info)
	switch {
	case err == nil:
		return info.FirstSeen, nil
	case errors.Is(err, storage.ErrNotExist) || IsDecodeError(err):
		return time.Time{}, nil
	}
	return time.Time{}, err
}

// Sessions lists session objects.
func (r *Repository) Sessions(ctx context.Context) ([]LiveSession, error) {
	infos, err := r.List(ctx, storage.SessionFile)
	if err != nil {
		return nil, err
	}
	out := make([]LiveSession, 0, len(infos))
	for _, fi := range infos {
		if strings.HasPrefix(fi.Name, "s-") {
			out = append(out, LiveSession{Name: fi.Name, ModTime: fi.ModTime})
		}
	}
	return out, nil
}

// CommitCheck verifies, for a writer whose session lapsed, that every pack
// it relied on still exists and is not tombstoned by a plan. It returns an
// error naming the first missing pack; the writer must then not commit.
func (r *Repository) CommitCheck(ctx context.Context) error {
	var packs []ID
	for pk := range r.Stats().DependsOn {
		packs = append(packs, pk)
	}
	return r.verifyPacks(ctx, packs)
}

// verifyPacks checks that every pack exists and no plan tombstones it.
func (r *Repository) verifyPacks(ctx context.Context, packs []ID) error {
	plans, err := r.Plans(ctx)
	if err != nil {
		return err
	}
	planned := PlannedPacks(plans)
	for _, pk := range packs {
		if planned[pk] {
			return fmt.Errorf("pack %s this backup relies on is scheduled for deletion by a prune that ran while the backup was stalled: %w", pk.Short(), ErrStaleSession)
		}
		if _, err := r.be.Stat(ctx, storage.Handle{Type: storage.PackFile, Name: packName(pk)}); err != nil {
			if errors.Is(err, storage.ErrNotExist) {
				return fmt.Errorf("pack %s this backup relies on was deleted while the backup was stalled: %w", pk.Short(), ErrStaleSession)
			}
			return err
		}
	}
	return nil
}

// ErrStaleSession means a writer's session expired and data it relied on
// is gone; the backup must be run again.
var ErrStaleSession = errors.New("session expired during the backup; nothing was committed, run it again")

// ErrSessionEnded means a writer tried to commit after its session ended:
// after End, or after a commit that failed.
var ErrSessionEnded = errors.New("the writer's session has ended: nothing more can be committed in it")

// Commit is the end of a writer's transaction (docs/FORMAT.md, "Writer
// protocol", steps 5 and 6). In this order it
//
//  1. flushes: every open pack and an index file for the packs not yet
//     indexed are saved, so everything sn references is durable and
//     findable (a no-op for a writer that has just flushed);
//  2. runs the commit check: a writer whose session lapsed refreshes the
//     session and checks that every pack it relied on still exists and is
//     planned for deletion by no prune (ErrStaleSession otherwise);
//  3. saves sn, the commit point, and sets sn.ID;
//  4. ends the session.
//
// A failed commit ends the session as well, and saves no snapshot unless
// the save itself was what failed, after steps 1 and 2 passed: a store may
// report an error for an object it did store, so a snapshot may then exist,
// and it is complete and checked like any other. Whatever the writer
// uploaded without a snapshot to reference it stays as unreferenced packs
// and index entries, which check calls harmless and prune removes. The
// session cannot be used again (ErrSessionEnded): a writer whose commit
// failed starts over.
//
// Removing the session object is not part of the commit. If it fails after
// the snapshot was saved, Commit still succeeds and End returns the error,
// so a caller that defers End can warn about it; the object expires by
// itself. The session is ended with a context that ctx's cancellation does
// not reach, so a cancelled writer does not leave its session behind.
func (s *Session) Commit(ctx context.Context, sn *snapshot.Snapshot) (ID, error) {
	id, err := s.commit(ctx, sn)
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	_ = s.End(endCtx) // reported by the caller's End, see above
	return id, err
}

// CommitAndContinue is Commit for a writer that commits several snapshots
// in one session (copy, repair snapshots): it commits sn the same way but
// leaves the session running for the next one; the writer ends it with
// End. A failed commit ends the session, as with Commit, so nothing after
// a failure is committed in it.
func (s *Session) CommitAndContinue(ctx context.Context, sn *snapshot.Snapshot) (ID, error) {
	id, err := s.commit(ctx, sn)
	if err != nil {
		endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
		defer cancel()
		_ = s.End(endCtx)
	}
	return id, err
}

// endTimeout bounds removing the session object after a commit.
const endTimeout = 30 * time.Second

// commit is steps 1 to 3 of Commit. Errors of the flush and the commit
// check are returned as they are; a failed save says so.
func (s *Session) commit(ctx context.Context, sn *snapshot.Snapshot) (ID, error) {
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	if ended {
		return ID{}, ErrSessionEnded
	}
	if err := s.r.Flush(ctx); err != nil {
		return ID{}, err
	}
	if err := s.PrepareCommit(ctx); err != nil {
		return ID{}, err
	}
	id, err := snapshot.Save(ctx, s.r, sn)
	if err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	return id, nil
}

// PrepareCommit is the commit check, run after the final Flush and before
// the snapshot is saved. When the session lapsed (the writer was stalled
// long enough that a prune may have counted it dead) it first refreshes the
// session — from then on no sweep can pass it by — and then checks that
// every pack the writer relied on still exists and is not planned for
// deletion. Any plan that could still delete such a pack was written while
// the session existed, so its sweep now waits for this writer.
func (s *Session) PrepareCommit(ctx context.Context) error {
	if !s.Lapsed() {
		return nil
	}
	if err := s.write(ctx); err != nil {
		return fmt.Errorf("refresh lapsed session before commit: %w", err)
	}
	return s.r.CommitCheck(ctx)
}

// Adopted counts the packs a writer took over from an interrupted one.
type Adopted struct {
	Packs int
	Bytes int64
}

// BeginWrite starts a writer in the order the protocol requires (see
// docs/FORMAT.md, "Writer protocol"): the session first, then the plans and
// the index, then reconciliation with the stored packs (orphans adopted,
// entries of deleted packs excluded). On error nothing is left running.
func (r *Repository) BeginWrite(ctx context.Context, command string) (*Session, Adopted, error) {
	s, err := r.StartSession(ctx, command)
	if err != nil {
		return nil, Adopted{}, err
	}
	fail := func(err error) (*Session, Adopted, error) {
		endCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.End(endCtx) // the object expires by itself if this fails
		return nil, Adopted{}, err
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		return fail(fmt.Errorf("load index: %w", err))
	}
	n, size, err := r.AdoptOrphans(ctx)
	if err != nil {
		return fail(err)
	}
	return s, Adopted{Packs: n, Bytes: size}, nil
}
