package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// ReceiverOptions configure streaming WAL archiving.
type ReceiverOptions struct {
	// Spool is the directory pg_receivewal writes to; segments leave it
	// once they are in the repository (the newest stays, so that a
	// restart resumes after it).
	Spool string
	// Slot is the replication slot (created when missing), so the server
	// keeps WAL the receiver has not yet received.
	Slot string
	// Interval is how often the growing segment is pushed (RPO).
	Interval time.Duration
	// Push stores files of the spool (full paths) in the repository
	// durably before it returns.
	Push func(ctx context.Context, paths []string) error
	// Logf reports progress and retried failures.
	Logf func(format string, args ...any)
}

// ReceiveWAL streams WAL with pg_receivewal --synchronous into the spool
// and pushes completed segments at once and the current partial segment
// every Interval, until ctx ends; then it pushes what it has and returns
// nil. pg_receivewal failures are retried with a pause.
func (c *Client) ReceiveWAL(ctx context.Context, o ReceiverOptions) error {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := os.MkdirAll(o.Spool, 0o700); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	create, err := c.Tool("pg_receivewal", "--create-slot", "--if-not-exists", "--slot="+o.Slot, "--no-password", "--dbname="+c.DSN(""))
	if err != nil {
		return err
	}
	if err := create.Run(ctx); err != nil {
		return fmt.Errorf("replication slot %s: %w", o.Slot, err)
	}
	s := &spool{dir: o.Spool, pushed: map[string]bool{}}
	recvErr := make(chan error, 1)
	start := func() {
		cmd, err := c.Tool("pg_receivewal", "--directory="+o.Spool, "--slot="+o.Slot, "--synchronous", "--no-password", "--dbname="+c.DSN(""))
		if err != nil {
			recvErr <- err
			return
		}
		go func() { recvErr <- cmd.Run(ctx) }()
	}
	start()
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			// pg_receivewal --synchronous flushed what it received.
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			<-recvErr
			return s.push(fctx, o, true)
		case err := <-recvErr:
			if ctx.Err() != nil {
				continue
			}
			o.Logf("pg_receivewal stopped: %v; restarting in 5 s", err)
			select {
			case <-time.After(5 * time.Second):
				start()
			case <-ctx.Done():
				recvErr <- nil
			}
		case <-poll.C:
			if err := s.push(ctx, o, false); err != nil && ctx.Err() == nil {
				o.Logf("push WAL: %v (retrying)", err)
			}
		case <-tick.C:
			if err := s.push(ctx, o, true); err != nil && ctx.Err() == nil {
				o.Logf("push WAL: %v (retrying)", err)
			}
		}
	}
}

type spool struct {
	dir         string
	pushed      map[string]bool
	partialSeen time.Time
	partialName string
}

// push stores the completed segments not yet pushed and, with partial,
// the current partial segment when it changed.
func (s *spool) push(ctx context.Context, o ReceiverOptions, partial bool) error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var complete []string
	var part string
	var partMod time.Time
	for _, e := range ents {
		name := e.Name()
		w, err := ParseWALName(name)
		if err != nil {
			continue
		}
		switch w.Kind {
		case WALSegment, WALHistory:
			complete = append(complete, name)
		case WALPartial:
			if fi, err := e.Info(); err == nil {
				part, partMod = name, fi.ModTime()
			}
		}
	}
	sort.Strings(complete)
	var paths []string
	for _, n := range complete {
		if !s.pushed[n] {
			paths = append(paths, filepath.Join(s.dir, n))
		}
	}
	pushPartial := partial && part != "" && (part != s.partialName || !partMod.Equal(s.partialSeen))
	if pushPartial {
		paths = append(paths, filepath.Join(s.dir, part))
	}
	if len(paths) == 0 {
		return nil
	}
	if err := o.Push(ctx, paths); err != nil {
		return err
	}
	for _, p := range paths {
		s.pushed[filepath.Base(p)] = true
	}
	if pushPartial {
		s.partialName, s.partialSeen = part, partMod
		delete(s.pushed, part)
	}
	// Keep the newest complete segment: pg_receivewal resumes after it.
	var errs []error
	for i, n := range complete {
		if i < len(complete)-1 && s.pushed[n] {
			if err := os.Remove(filepath.Join(s.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			delete(s.pushed, n)
		}
	}
	if len(paths) > 0 {
		o.Logf("archived %d WAL file(s), last %s", len(paths), filepath.Base(paths[len(paths)-1]))
	}
	return errors.Join(errs...)
}
