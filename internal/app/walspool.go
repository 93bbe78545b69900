package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// Asynchronous WAL archiving (pgBackRest's archive-async): archive_command
// runs SpoolWAL, which returns once the WAL file is durable in a local
// spool; RunWALSpooler, a long-running pusher, holds the repository open
// and archives what the spool holds, several files per snapshot. Opening
// a repository derives a key from the password (deliberately slow) and a
// commit writes a snapshot: done once per segment, they bound how fast a
// busy server can archive.

// Spool defaults.
const (
	// DefaultSpoolMaxFiles bounds a spool (256 segments: 4 GiB).
	DefaultSpoolMaxFiles = 256
	// DefaultSpoolBatch is how many files a pusher archives per snapshot.
	DefaultSpoolBatch = 64
	// DefaultSpoolPoll is how often an idle pusher looks at the spool.
	DefaultSpoolPoll = 500 * time.Millisecond
)

// WALSpoolPush is wal-push --spool: spool WAL files, and archive the
// whole spool here when no pusher runs or the spool is over its bound.
type WALSpoolPush struct {
	Repo Repo
	// OpenRepo, when set, gives Repo only when this call must archive:
	// the common case (a pusher runs) then reaches neither the storage
	// nor the password.
	OpenRepo func(context.Context) (Repo, error)
	Spool    string
	Paths    []string
	// SystemID is the cluster's system identifier; "" reads it from the
	// segments' headers, else ControlFile.
	SystemID    string
	ControlFile string // default global/pg_control (of the data directory)
	// MaxFiles and MaxBytes bound the spool (0: no bound of that kind;
	// both 0: DefaultSpoolMaxFiles).
	MaxFiles int
	MaxBytes int64
	Host     string // recorded in the snapshots; default this machine's name
}

// WALSpoolPushResult says what SpoolWAL did.
type WALSpoolPushResult struct {
	Spooled []string // the spool names of the files spooled
	// Reason says why this call archived the spool itself; "" when it
	// left it to the running pusher.
	Reason    string
	Archived  int      // files archived by this call
	Snapshots []string // the archive snapshots this call committed
}

// SpoolWAL spools the WAL files of req durably. When a pusher runs and
// the spool is within its bound, it returns at once; otherwise it
// archives the whole spool itself (backpressure: nothing waits for a
// pusher that is not there, and a spool never grows past its bound by
// more than what one archive_command adds while a pusher is slow). It
// returns nil only when the files are durable in the spool, and, when it
// archived, in the repository.
func (a *App) SpoolWAL(ctx context.Context, req WALSpoolPush) (*WALSpoolPushResult, error) {
	if req.ControlFile == "" {
		req.ControlFile = "global/pg_control"
	}
	if req.MaxFiles == 0 && req.MaxBytes == 0 {
		req.MaxFiles = DefaultSpoolMaxFiles
	}
	if req.MaxFiles < 0 || req.MaxBytes < 0 {
		return nil, fmt.Errorf("WAL spool %s: negative bound", req.Spool)
	}
	sysid, err := postgres.ArchiveSystemID(req.Paths, req.SystemID, req.ControlFile)
	if err != nil {
		return nil, err
	}
	sp, err := postgres.OpenWALSpool(req.Spool)
	if err != nil {
		return nil, err
	}
	added, err := sp.Add(req.Paths, sysid)
	if err != nil {
		return nil, err
	}
	res := &WALSpoolPushResult{}
	for _, f := range added {
		res.Spooled = append(res.Spooled, f.Name)
	}
	unlock, ok, err := sp.TryLock()
	if err != nil {
		return nil, err
	}
	if ok {
		defer unlock()
		res.Reason = "no pusher runs on the spool"
	} else {
		files, _, err := sp.List()
		if err != nil {
			return nil, err
		}
		st := postgres.StatusOf(sp.Dir, files)
		if !st.Over(req.MaxFiles, req.MaxBytes) {
			return res, nil
		}
		res.Reason = fmt.Sprintf("the spool holds %d files (%s), over its bound", st.Files, formatBytes(st.Bytes))
	}
	repo := req.Repo
	if req.OpenRepo != nil {
		if repo, err = req.OpenRepo(ctx); err != nil {
			return nil, err
		}
	}
	r, err := a.Open(ctx, repo)
	if err != nil {
		return nil, err
	}
	for {
		files, _, err := sp.List()
		if err != nil {
			return res, err
		}
		if len(files) == 0 {
			return res, nil
		}
		batch := sameSystem(files, 0)
		id, n, err := a.pushSpoolBatch(ctx, r, sp, batch, req.Host)
		if err != nil {
			return res, err
		}
		if id != "" {
			res.Snapshots = append(res.Snapshots, id)
		}
		res.Archived += n
	}
}

// sameSystem is the first files of files (sorted by system) of the first
// one's system, at most limit of them (0: all).
func sameSystem(files []postgres.SpooledWAL, limit int) []postgres.SpooledWAL {
	n := 0
	for n < len(files) && files[n].System == files[0].System && (limit <= 0 || n < limit) {
		n++
	}
	return files[:n]
}

// pushSpoolBatch archives spooled files of one system as one snapshot,
// then removes them from the spool. It returns the snapshot's ID ("" when
// every file had gone: archived by another pusher) and how many files it
// archived. The spool files stay when anything fails.
func (a *App) pushSpoolBatch(ctx context.Context, r *repository.Repository, sp *postgres.WALSpool, files []postgres.SpooledWAL, host string) (string, int, error) {
	b, err := sp.OpenBatch(files)
	if err != nil {
		return "", 0, err
	}
	defer b.Close()
	if len(b.Files) == 0 {
		return "", 0, nil
	}
	if host == "" {
		host, _ = os.Hostname()
	}
	res, err := a.RunSourceBackup(ctx, SourceBackup{Repository: r, Source: postgres.Source, Paths: []string{"/postgres/" + b.System + "/wal"},
		Kind: KindContinuous, Host: host, NoProgress: true,
		Save: func(ctx context.Context, s source.Sink) (map[string]string, error) {
			m, err := b.Archive(ctx, s)
			if err != nil {
				return nil, err
			}
			return m.Map(), nil
		}})
	if err != nil {
		return "", 0, err
	}
	b.Close()
	// The snapshot is committed: a failure to remove only means the files
	// are archived once more.
	if err := sp.Remove(b); err != nil {
		a.warnf("%v (the files will be archived again)", err)
	}
	return res.Snapshot.ID.String(), len(b.Files), nil
}

// WALSpooler is a long-running pusher of a WAL spool.
type WALSpooler struct {
	Repo  Repo
	Spool string
	// Batch is how many files at most go into one snapshot (default
	// DefaultSpoolBatch).
	Batch int
	// Poll is how often an idle pusher looks at the spool (default
	// DefaultSpoolPoll).
	Poll time.Duration
	// Once archives what the spool holds and returns (draining it before
	// a restore, or from a timer instead of a service).
	Once bool
	Host string // recorded in the snapshots; default this machine's name
	// RetryMax bounds the pause after a failure (default 1 minute); the
	// pause starts at one second and doubles.
	RetryMax time.Duration
}

// WALSpoolerResult is what a pusher did before it returned.
type WALSpoolerResult struct {
	Archived  int // files archived
	Snapshots int // snapshots committed
}

// RunWALSpooler opens the repository once, takes the spool's lock (it
// waits while another pusher, or wal-push archiving the spool, holds it)
// and archives the spool's files in batches, several per snapshot,
// removing each batch's files once its snapshot is committed. Failures
// are reported (Events, and the spool's state for pg info) and retried
// with a growing pause. It returns when ctx ends (nil: what remains in
// the spool is archived by the next pusher or wal-push), or with Once
// when the spool is empty or a batch fails.
func (a *App) RunWALSpooler(ctx context.Context, req WALSpooler) (*WALSpoolerResult, error) {
	if req.Batch <= 0 {
		req.Batch = DefaultSpoolBatch
	}
	if req.Poll <= 0 {
		req.Poll = DefaultSpoolPoll
	}
	if req.RetryMax <= 0 {
		req.RetryMax = time.Minute
	}
	sp, err := postgres.OpenWALSpool(req.Spool)
	if err != nil {
		return nil, err
	}
	r, err := a.Open(ctx, req.Repo)
	if err != nil {
		return nil, err
	}
	res := &WALSpoolerResult{}
	unlock, err := a.lockSpool(ctx, sp, req.Poll)
	if err != nil {
		if ctx.Err() != nil {
			return res, nil
		}
		return nil, err
	}
	defer unlock()
	host, _ := os.Hostname()
	st := postgres.SpoolState{PID: os.Getpid(), Hostname: host, Started: time.Now().UTC()}
	a.writeSpoolState(sp, st)
	pause := time.Second
	for {
		if n, err := sp.RemoveStaleTemps(time.Now()); err != nil {
			a.warnf("%v", err)
		} else if n > 0 {
			a.infof("removed %d temporary file(s) left in %s by killed pushes", n, sp.Dir)
		}
		files, _, err := sp.List()
		if err == nil && len(files) == 0 {
			if req.Once {
				return res, nil
			}
			if !sleepCtx(ctx, req.Poll) {
				return res, nil
			}
			continue
		}
		var id string
		var n int
		if err == nil {
			batch := sameSystem(files, req.Batch)
			id, n, err = a.pushSpoolBatch(ctx, r, sp, batch, req.Host)
			if err == nil && n > 0 {
				res.Archived += n
				res.Snapshots++
				st.LastPush, st.LastPushFiles, st.LastSnapshot = time.Now().UTC(), n, id
				st.Pushed += int64(n)
				st.LastError, st.LastErrorTime = "", time.Time{}
				a.writeSpoolState(sp, st)
				a.infof("archived %d WAL file(s) of system %s, %s .. %s, in snapshot %.8s", n, batch[0].System, batch[0].WAL.Name, batch[len(batch)-1].WAL.Name, id)
				pause = time.Second
			}
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return res, nil
		}
		st.LastError, st.LastErrorTime = err.Error(), time.Now().UTC()
		a.writeSpoolState(sp, st)
		if req.Once {
			return res, err
		}
		a.warnf("WAL spool %s: %v (retrying in %v)", sp.Dir, err, pause)
		if !sleepCtx(ctx, pause) {
			return res, nil
		}
		pause = min(2*pause, req.RetryMax)
	}
}

// lockSpool takes the spool's lock, waiting while someone else holds it.
func (a *App) lockSpool(ctx context.Context, sp *postgres.WALSpool, poll time.Duration) (func(), error) {
	said := false
	for {
		unlock, ok, err := sp.TryLock()
		if err != nil || ok {
			return unlock, err
		}
		if !said {
			a.infof("waiting for the lock of WAL spool %s: another pusher, or wal-push archiving the spool, holds it", sp.Dir)
			said = true
		}
		if !sleepCtx(ctx, poll) {
			return nil, ctx.Err()
		}
	}
}

func (a *App) writeSpoolState(sp *postgres.WALSpool, st postgres.SpoolState) {
	if err := sp.WriteState(st); err != nil {
		a.warnf("%v", err)
	}
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// WALSpoolStatus reads the state of the spool dir (pg info): what waits
// in it, and whether a pusher runs. It changes nothing.
func (a *App) WALSpoolStatus(dir string) (postgres.SpoolStatus, error) {
	if dir == "" {
		return postgres.SpoolStatus{}, errors.New("WAL spool: no directory given")
	}
	return (&postgres.WALSpool{Dir: dir}).Status()
}
