package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/bunkerbackup/bunker/internal/app/streamtree"
	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/spf13/cobra"
)

// kindContinuous marks snapshots of a log archive (WAL, binlog, oplog).
const kindContinuous = "continuous"

// sourceCommands are the commands one database source adds.
type sourceCommands struct {
	backup  *cobra.Command   // "backup NAME"
	restore *cobra.Command   // "restore NAME"
	extra   []*cobra.Command // top-level commands, e.g. "pg"
}

// addSourceCommands adds every source's commands under backup, restore
// and the root.
func (a *App) addSourceCommands(root *cobra.Command) {
	var backup, restore *cobra.Command
	for _, c := range root.Commands() {
		switch c.Name() {
		case "backup":
			backup = c
		case "restore":
			restore = c
		}
	}
	for _, sc := range []sourceCommands{a.postgresCommands(), a.mysqlCommands(), a.mongodbCommands(), a.kubernetesCommands()} {
		if sc.backup != nil {
			backup.AddCommand(sc.backup)
		}
		if sc.restore != nil {
			restore.AddCommand(sc.restore)
		}
		root.AddCommand(sc.extra...)
	}
}

// sourceBackup describes one backup of a database (or any source that
// produces named streams rather than reading a file tree).
type sourceBackup struct {
	source string   // "postgres", "mysql", "mongodb"; recorded as metadata "source"
	paths  []string // the snapshot's paths, e.g. /postgres/127.0.0.1:5432
	tags   []string
	host   string
	kind   string
	// parent picks the parent, the base and the kind among the snapshots
	// of the same paths and host (newest last); nil means none. An empty
	// kind keeps kind.
	parent func(all []*snapshot.Snapshot) (parent, base *snapshot.Snapshot, kind string)
	// repo, when set, is used instead of opening -r (long-running
	// commands open it once).
	repo *repository.Repository
	// quiet prints no summary (a receiver's frequent small pushes).
	quiet bool
	// write produces the files and returns the snapshot metadata.
	write func(ctx context.Context, w source.Sink) (map[string]string, error)
}

// sourceFlags are the flags every database backup takes.
type sourceFlags struct {
	tags []string
	host string
	jobs int
}

func (f *sourceFlags) add(cmd *cobra.Command, jobsHelp string) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.tags, "tag", nil, "add a `tag` (repeatable, or comma separated)")
	fl.StringVar(&f.host, "host", "", "record this host name (default: this machine's)")
	if jobsHelp != "" {
		fl.IntVarP(&f.jobs, "jobs", "j", 2, jobsHelp)
		flagRange(fl, 1, 1000, "jobs")
	}
}

func (f *sourceFlags) hostname() string {
	if f.host != "" {
		return f.host
	}
	h, _ := os.Hostname()
	return h
}

// runSourceBackup streams a source into the repository and commits one
// snapshot, or nothing at all when anything fails.
func (a *App) runSourceBackup(ctx context.Context, b sourceBackup) (*snapshot.Snapshot, error) {
	r := b.repo
	if r == nil {
		var err error
		if r, err = a.openRepo(ctx); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	before := r.Stats()
	sess, adopted, err := r.BeginWrite(ctx, "backup")
	if err != nil {
		return nil, err
	}
	defer func() {
		endCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sess.End(endCtx); err != nil {
			a.out.warnf("could not remove session marker %s: %v (it expires by itself)", sess.Name, err)
		}
	}()
	if adopted.Packs > 0 {
		a.out.infof("resuming: reusing %d packs (%s) left by an interrupted backup", adopted.Packs, formatBytes(adopted.Bytes))
	}
	a.setMemoryBudget(r)

	sn := snapshot.New(b.paths, splitTags(b.tags), b.host, start)
	sn.Program = "bunker " + Version
	sn.Kind = b.kind
	if b.parent != nil {
		all, _, err := snapshot.LoadAll(ctx, r)
		if err != nil {
			return nil, err
		}
		var same []*snapshot.Snapshot
		for _, s := range all {
			if s.Hostname == sn.Hostname && slices.Equal(s.Paths, sn.Paths) {
				same = append(same, s)
			}
		}
		p, base, kind := b.parent(same)
		if kind != "" {
			sn.Kind = kind
		}
		if p != nil {
			sn.Parent = &p.ID
			if base != nil {
				sn.Base = &base.ID
			}
		}
	}

	cfg := r.Config()
	arch, err := archiver.New(r, archiver.Options{
		Chunker: cfg.Chunker.Params(),
	})
	if err != nil {
		return nil, err
	}
	w := streamtree.NewWriter(arch, start, sn.Username)
	stopProgress := func() {}
	if !b.quiet {
		stopProgress = a.out.ticker(200*time.Millisecond, func(final bool) { a.sourceProgress(arch, w, start) })
	}
	stopSavers := arch.StartStreams(ctx)
	meta, err := b.write(ctx, w)
	var root archiver.ID
	if err == nil {
		root, err = w.Root(ctx)
	}
	stopSavers()
	stopProgress()
	if err == nil {
		err = r.Flush(ctx)
	} else {
		// Keep what was uploaded findable for the next run.
		fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = r.Flush(fctx)
		cancel()
	}
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("%s backup failed, no snapshot saved: %w", b.source, err)
	}
	if sn.Metadata == nil {
		sn.Metadata = map[string]string{}
	}
	for k, v := range meta {
		sn.Metadata[k] = v
	}
	sn.Metadata["source"] = b.source
	st := &arch.Stats
	ws := r.Stats()
	ws.Blobs -= before.Blobs
	ws.BlobBytes -= before.BlobBytes
	ws.StoredBytes -= before.StoredBytes
	ws.Packs -= before.Packs
	sn.Tree = root
	read := st.BytesRead.Load()
	sn.Summary = &snapshot.Summary{
		Start: start, End: time.Now(), Files: w.Files(), FilesNew: w.Files(), FilesRead: w.Files(),
		BytesRead: read, TotalBytes: read,
		BlobsAdded: int64(ws.Blobs), BytesAdded: ws.BlobBytes, BytesStored: ws.StoredBytes,
	}
	if _, err := sess.Commit(ctx, sn); err != nil {
		return nil, err
	}
	if !b.quiet {
		a.printSourceSummary(sn, ws)
	}
	return sn, nil
}

func (a *App) sourceProgress(arch *archiver.Archiver, w *streamtree.Writer, start time.Time) {
	st := &arch.Stats
	elapsed := time.Since(start)
	read := st.BytesRead.Load()
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "status", "seconds_elapsed": int(elapsed.Seconds()),
			"files_done": w.Files(), "bytes_read": read, "bytes_added": st.BytesAdded.Load(), "current": w.Current()})
		return
	}
	cur := w.Current()
	if len(cur) > 40 {
		cur = "…" + cur[len(cur)-39:]
	}
	a.out.status(fmt.Sprintf("[%s] %d files, %s read, %s added, %s  %s", formatDuration(elapsed), w.Files(),
		formatBytes(read), formatBytes(st.BytesAdded.Load()), formatRate(read, elapsed), cur))
}

func (a *App) printSourceSummary(sn *snapshot.Snapshot, ws repository.WriteStats) {
	s := sn.Summary
	dur := s.End.Sub(s.Start)
	if a.g.json {
		a.out.jsonLine(map[string]any{
			"message_type": "summary", "snapshot_id": sn.ID.String(), "kind": sn.Kind, "source": sn.Metadata["source"],
			"files": s.Files, "bytes_read": s.BytesRead, "bytes_added": s.BytesAdded, "bytes_stored": s.BytesStored,
			"data_blobs_added": s.BlobsAdded, "packs_written": ws.Packs, "duration_seconds": dur.Seconds(),
			"metadata": sn.Metadata,
		})
		return
	}
	a.out.textf("Files:       %d", s.Files)
	a.out.textf("Added:       %s (%s stored)", formatBytes(s.BytesAdded), formatBytes(s.BytesStored))
	a.out.textf("Processed:   %s in %s (%s)", formatBytes(s.BytesRead), formatDuration(dur), formatRate(s.BytesRead, dur))
	a.out.textf("snapshot %s saved (%s %s)", sn.ShortID(), sn.Metadata["source"], sn.Kind)
}

// findBackup opens the repository with its index and finds the snapshot
// ref among those that check accepts (nil error): "latest" is the newest
// accepted one passing f; a snapshot named by ID that check refuses is
// an error saying why. It also returns every snapshot.
func (a *App) findBackup(ctx context.Context, ref string, f snapshot.Filter, check func(*snapshot.Snapshot) error) (*repository.Repository, *snapshot.Snapshot, []*snapshot.Snapshot, error) {
	r, err := a.openRepoIndexed(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	all, err := a.loadSnapshots(ctx, r)
	if err != nil {
		return nil, nil, nil, err
	}
	cands := all
	if ref == "latest" {
		cands = nil
		for _, s := range all {
			if check(s) == nil {
				cands = append(cands, s)
			}
		}
	}
	sn, err := snapshot.Find(cands, ref, f)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := check(sn); err != nil {
		return nil, nil, nil, err
	}
	return r, sn, all, nil
}

// openSourceSnapshot finds a backup of the given source ("latest" is the
// newest of that source, log archives excluded).
func (a *App) openSourceSnapshot(ctx context.Context, ref, src string, f snapshot.Filter) (*repository.Repository, *snapshot.Snapshot, error) {
	r, sn, _, err := a.findBackup(ctx, ref, f, func(s *snapshot.Snapshot) error {
		if s.Metadata["source"] != src || s.Kind == kindContinuous {
			return fmt.Errorf("snapshot %s is not a %s backup (source %q, kind %s)", s.ShortID(), src, s.Metadata["source"], s.Kind)
		}
		return nil
	})
	return r, sn, err
}

// snapshotInfos describes snapshots to the sources' own logic.
func snapshotInfos(all []*snapshot.Snapshot) []source.SnapshotInfo {
	out := make([]source.SnapshotInfo, len(all))
	for i, s := range all {
		out[i] = source.SnapshotInfo{ID: s.ID.String(), Kind: s.Kind, Host: s.Hostname, Paths: s.Paths, Time: s.Time, Metadata: s.Metadata}
	}
	return out
}

// snapshotByID returns the snapshot with the full ID id among all, nil
// for none.
func snapshotByID(all []*snapshot.Snapshot, id string) *snapshot.Snapshot {
	for _, s := range all {
		if id != "" && s.ID.String() == id {
			return s
		}
	}
	return nil
}

// snapshotTrees returns a function that gives the tree of the snapshot
// with the full ID id among all.
func snapshotTrees(r *repository.Repository, all []*snapshot.Snapshot) func(id string) source.Tree {
	byID := make(map[string]*snapshot.Snapshot, len(all))
	for _, s := range all {
		byID[s.ID.String()] = s
	}
	return func(id string) source.Tree { return streamtree.NewReader(r, byID[id].Tree) }
}

// expireCommand is the "forget what no kept backup needs" command of a
// log archive (WAL, binlogs, oplog): la chooses, from all snapshots, the
// archive snapshots to forget and says how many archive snapshots there
// are; its notes are shown with -v.
func (a *App) expireCommand(use, shortHelp, long string, la source.LogArchive) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   use,
		Short: shortHelp,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := a.openRepo(ctx)
			if err != nil {
				return err
			}
			all, err := a.loadSnapshots(ctx, r)
			if err != nil {
				return err
			}
			x := la.Expire(snapshotInfos(all))
			for _, n := range x.Notes {
				a.out.infof("%s", n)
			}
			byID := make(map[string]*snapshot.Snapshot, len(all))
			for _, s := range all {
				byID[s.ID.String()] = s
			}
			var list []*snapshot.Snapshot
			var why []string
			for _, e := range x.Expired {
				if sn := byID[e.ID]; sn != nil {
					list = append(list, sn)
					why = append(why, e.Why)
				}
			}
			forgotten := 0
			for i, sn := range list {
				if dryRun {
					a.out.textf("would forget %s %s", sn.ShortID(), why[i])
					continue
				}
				if err := snapshot.Remove(ctx, r, sn.ID); err != nil {
					return fmt.Errorf("forget %s: %w", sn.ShortID(), err)
				}
				forgotten++
				a.out.infof("forgot %s %s", sn.ShortID(), why[i])
			}
			total, what := x.Archives, la.Name()
			if a.g.json {
				a.out.jsonLine(map[string]any{"message_type": "summary", "forgotten": forgotten, "would_forget": len(list) - forgotten,
					"archive_snapshots": total, "dry_run": dryRun})
			} else if dryRun {
				a.out.textf("%d of %s would be forgotten", len(list), plural(int64(total), what+" snapshot"))
			} else {
				a.out.textf("forgot %d of %s; run prune to free the space", forgotten, plural(int64(total), what+" snapshot"))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "only say what would be forgotten")
	return cmd
}
