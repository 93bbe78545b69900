package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/fusefs"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
)

// MountRequest mounts a repository's snapshots as a read-only FUSE
// filesystem (see package fusefs for the layout).
type MountRequest struct {
	Repo Repo
	// Filter selects the snapshots shown; the zero Filter shows all.
	Filter snapshot.Filter
	// Dir is the mountpoint: an existing, empty directory.
	Dir string
	// AllowOther lets other users see the files (fuse's allow_other).
	AllowOther bool
	// Mounted, when set, is called once the filesystem is mounted, with
	// the number of snapshots it shows.
	Mounted func(dir string, snapshots int)
}

// Validate says what is missing in r.
func (r *MountRequest) Validate() error {
	if r.Dir == "" {
		return errors.New("mount: no mountpoint given")
	}
	return nil
}

// MountResult is what a mount served.
type MountResult struct {
	Dir       string
	Snapshots int
	// Duration is how long it was mounted.
	Duration time.Duration
}

// unmountTries bounds the unmount attempts after ctx is cancelled while
// files in the mount are still open (EBUSY); unmountWait is the pause
// between them.
const (
	unmountTries = 20
	unmountWait  = 500 * time.Millisecond
)

// Mount mounts the snapshots of req.Repo that pass req.Filter at req.Dir
// and serves them until ctx is cancelled (then it unmounts) or the
// filesystem is unmounted from outside (fusermount3 -u). Either way is a
// normal end: the result comes without an error.
func (a *App) Mount(ctx context.Context, req MountRequest) (*MountResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	// Before opening the repository: these are the usual mistakes.
	if err := fusefs.CheckMountpoint(req.Dir); err != nil {
		return nil, fmt.Errorf("mount: %w", err)
	}
	if err := fusefs.CheckFUSE(); err != nil {
		return nil, fmt.Errorf("mount %s: %w", req.Dir, err)
	}
	r, err := a.OpenIndexed(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	all, err := a.LoadSnapshots(ctx, r)
	if err != nil {
		return nil, err
	}
	snaps := req.Filter.Apply(all)
	srv, err := fusefs.Mount(r, snaps, req.Dir, fusefs.Options{AllowOther: req.AllowOther, Logger: a.logger()})
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res := &MountResult{Dir: req.Dir, Snapshots: len(snaps)}
	if req.Mounted != nil {
		req.Mounted(req.Dir, len(snaps))
	}
	done := make(chan struct{})
	go func() {
		srv.Wait()
		close(done)
	}()
	select {
	case <-done:
		res.Duration = time.Since(start)
		return res, nil
	case <-ctx.Done():
	}
	for i := 0; ; i++ {
		err := srv.Unmount()
		if err == nil {
			break
		}
		if i+1 == unmountTries {
			return res, fmt.Errorf("%w (files in it are still open? unmount it with fusermount3 -u %s)", err, req.Dir)
		}
		a.warnf("%v; trying again", err)
		select {
		case <-done:
			res.Duration = time.Since(start)
			return res, nil
		case <-time.After(unmountWait):
		}
	}
	<-done
	res.Duration = time.Since(start)
	return res, nil
}
