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
// delete what it may depend on.
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

// End stops refreshing and removes the session object.
func (s *Session) End(ctx context.Context) error {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return nil
	}
	s.ended = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	return s.r.be.Remove(ctx, storage.Handle{Type: storage.SessionFile, Name: s.Name})
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

// PrepareCommit must be called after the final Flush and before a writer
// saves its snapshot. When the session lapsed (the writer was stalled long
// enough that a prune may have counted it dead) it first refreshes the
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
