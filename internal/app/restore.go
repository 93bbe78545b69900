package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/exclude"
	"github.com/bunkerbackup/bunker/internal/storage/location"
)

// RestoreRequest is a restore of a snapshot's files (or of a path in
// it) into a directory.
type RestoreRequest struct {
	Repo Repo
	// Snapshot is an ID, an ID prefix or "latest", resolved under Filter.
	Snapshot string
	Filter   snapshot.Filter
	// Path is the path in the snapshot to restore: its contents go into
	// Target. "" or "/" restores the whole snapshot.
	Path   string
	Target string
	// Include and Exclude (IInclude and IExclude ignoring case) select
	// the snapshot's paths to restore; none restores everything.
	Include, IInclude, Exclude, IExclude []string
	// Overwrite is what happens to existing entries:
	// restorer.OverwriteAlways (the default), OverwriteIfChanged,
	// OverwriteIfDifferent or OverwriteNever.
	Overwrite string
	// Delete removes entries of restored directories that the snapshot
	// does not have.
	Delete bool
	// Verify reads every restored file back and compares it with the
	// snapshot.
	Verify bool
	// NoOwner restores no ownership (even as root); NoXattrs no extended
	// attributes; Sync fsyncs every restored file.
	NoOwner, NoXattrs, Sync bool
}

// Validate says what is missing or wrong in r.
func (r *RestoreRequest) Validate() error {
	if r.Target == "" {
		return errors.New("restore: no target directory")
	}
	switch r.Overwrite {
	case "", restorer.OverwriteAlways, restorer.OverwriteIfChanged, restorer.OverwriteIfDifferent, restorer.OverwriteNever:
	default:
		return fmt.Errorf("--overwrite must be always, if-changed, if-different or never, not %q", r.Overwrite)
	}
	return nil
}

// RestoreResult is what a restore did.
type RestoreResult struct {
	Snapshot *snapshot.Snapshot
	Target   string
	// FilesRestored and BytesRestored are the files written; FilesSkipped
	// the existing ones kept; Dirs the directories restored; Deleted the
	// entries removed (Delete).
	FilesRestored, FilesSkipped, BytesRestored, Dirs, Deleted int64
	// Failed are the entries that could not be restored (each also a
	// warning).
	Failed []string
	// Verified is how many files were read back (Verify);
	// VerifyFailures those that differ from the snapshot, left under
	// their partial names.
	Verified       int
	VerifyFailures []string
	Duration       time.Duration
}

// Restore restores a snapshot's files into req.Target. An entry that
// cannot be restored is a warning and the others go on; then, or when a
// restored file fails verification, the result comes with a
// *PartialError. Progress goes to Events with Op "restore".
func (a *App) Restore(ctx context.Context, req RestoreRequest) (*RestoreResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	f, err := a.FindSnapshot(ctx, req.Repo, req.Snapshot, req.Filter)
	if err != nil {
		return nil, err
	}
	sn := f.Snapshot
	sel, err := restoreSelector(req.Include, req.IInclude, req.Exclude, req.IExclude)
	if err != nil {
		return nil, err
	}
	overwrite := req.Overwrite
	if overwrite == "" {
		overwrite = restorer.OverwriteAlways
	}
	out := &RestoreResult{Snapshot: sn, Target: req.Target}
	var failedMu sync.Mutex
	// On remote stores every request costs time (and money): read the
	// blobs in few large ranges of packs. (More writers did not help: in
	// one comparison 8 took 2.3x as long as 4, in openat.)
	readahead := location.Remote(req.Repo.Location)
	if readahead {
		a.setMemoryBudget(f.Repository, readaheadMemory)
	}
	res := restorer.New(f.Repository, restorer.Options{
		Select: sel, Overwrite: overwrite, Delete: req.Delete, NoOwner: req.NoOwner, NoXattrs: req.NoXattrs, Sync: req.Sync, Verify: req.Verify,
		Readahead: readahead,
		// Shared blobs that leave read-ahead's memory wait in a private
		// file there (the temporary directory without a cache).
		SpillDir: a.Storage.CacheDir,
		Warn:     func(msg string) { a.warnf("%s", msg) },
		OnError: func(p string, err error) error { // called from several writers
			failedMu.Lock()
			out.Failed = append(out.Failed, p)
			failedMu.Unlock()
			a.warnf("%v", err)
			return nil
		},
	})
	if sel == nil && (req.Path == "" || req.Path == "/") && sn.Summary != nil && sn.Kind != "" {
		res.SetTotals(sn.Summary.Files, sn.Summary.TotalBytes)
	}
	start := time.Now()
	stop := a.ticker(func(final bool) { a.progress(restoreProgress(&res.Stats, start, final)) })
	err = res.Restore(ctx, sn.Tree, req.Path, req.Target)
	stop()
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	out.VerifyFailures = res.VerifyFailures()
	for _, p := range out.VerifyFailures {
		a.warnf("verify: %s differs from the snapshot; left as %s", p, filepath.Join(filepath.Dir(p), restorer.PartialName(filepath.Base(p))))
	}
	st := &res.Stats
	out.FilesRestored, out.FilesSkipped, out.BytesRestored = st.FilesDone.Load(), st.FilesSkipped.Load(), st.BytesDone.Load()
	out.Dirs, out.Deleted = st.Dirs.Load(), st.Deleted.Load()
	if req.Verify {
		out.Verified = res.Written()
	}
	out.Duration = time.Since(start)
	if len(out.Failed) > 0 || len(out.VerifyFailures) > 0 {
		// The rest was restored: a partial result (exit 3), like a
		// backup with unreadable sources.
		return out, &PartialError{Msg: fmt.Sprintf("%d entries could not be restored, %d failed verification", len(out.Failed), len(out.VerifyFailures))}
	}
	return out, nil
}

func restoreProgress(st *restorer.Stats, start time.Time, final bool) Progress {
	return Progress{Op: "restore", Elapsed: time.Since(start), Files: st.FilesDone.Load(), FilesTotal: st.FilesTotal.Load(),
		Bytes: st.BytesDone.Load(), BytesTotal: st.BytesTotal.Load(), Final: final}
}

// restoreSelector builds the include/exclude decision for snapshot paths.
func restoreSelector(inc, iinc, exc, iexc []string) (func(string, bool) (bool, bool), error) {
	if len(inc)+len(iinc)+len(exc)+len(iexc) == 0 {
		return nil, nil
	}
	var ex, in *exclude.Matcher
	var err error
	if len(exc)+len(iexc) > 0 {
		if ex, err = exclude.New(exclude.Options{Patterns: exc, IPatterns: iexc}); err != nil {
			return nil, err
		}
	}
	if len(inc)+len(iinc) > 0 {
		if in, err = exclude.New(exclude.Options{Patterns: inc, IPatterns: iinc}); err != nil {
			return nil, err
		}
	}
	return func(p string, isDir bool) (bool, bool) {
		if ex != nil && ex.Excluded(p, isDir) {
			return false, false
		}
		if in == nil {
			return true, true
		}
		if in.Excluded(p, isDir) {
			return true, true
		}
		// Not matched (yet): look inside directories, in case something
		// below matches.
		return false, isDir
	}, nil
}
