package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/pack"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/engine/tree"
	"github.com/bunkerbackup/bunker/internal/exclude"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/spf13/cobra"
)

type backupOptions struct {
	excludes         []string
	iexcludes        []string
	excludeFiles     []string
	excludeIfPresent []string
	excludeCaches    bool
	oneFileSystem    bool
	tags             []string
	host             string
	dryRun           bool
	stdin            bool
	stdinFilename    string
	stdinCommand     bool
	full             bool
	differential     bool
	parent           string
	noXattrs         bool
	withAtime        bool
	filesFrom        []string
}

func (a *App) backupCommand() *cobra.Command {
	var o backupOptions
	cmd := &cobra.Command{
		Use:   "backup [flags] PATH... | --stdin | --stdin-from-command -- CMD ARGS...",
		Short: "Back up files, standard input or a command's output",
		Long: `Back up the given paths into the repository and record a snapshot.

By default a backup is incremental: files unchanged since the parent snapshot
(same size, mtime, ctime and inode) are not read again. --full reads every
file; --differential compares against the last full backup of the same paths.
The first backup of a set of paths is always full. The snapshot records its
kind.

Exit code 3 means the snapshot was saved, but some files could not be read.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runBackup(cmd.Context(), o, args)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.excludes, "exclude", "e", nil, "exclude a `pattern` (repeatable)")
	f.StringArrayVar(&o.iexcludes, "iexclude", nil, "like --exclude, ignoring case")
	f.StringArrayVar(&o.excludeFiles, "exclude-file", nil, "read exclude patterns from a `file`")
	f.StringArrayVar(&o.excludeIfPresent, "exclude-if-present", nil, "exclude directories holding this `file[:header]`")
	f.BoolVar(&o.excludeCaches, "exclude-caches", false, "exclude directories with a valid CACHEDIR.TAG")
	f.BoolVarP(&o.oneFileSystem, "one-file-system", "x", false, "do not cross filesystem boundaries")
	f.StringArrayVar(&o.tags, "tag", nil, "add a `tag` (repeatable, or comma separated)")
	f.StringVar(&o.host, "host", "", "record this host name (default: this machine's)")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "read and chunk everything, write nothing")
	f.BoolVar(&o.stdin, "stdin", false, "back up standard input")
	f.StringVar(&o.stdinFilename, "stdin-filename", "stdin", "file name for --stdin / --stdin-from-command")
	f.BoolVar(&o.stdinCommand, "stdin-from-command", false, "back up the output of the command after --; fail if it exits non-zero (it gets the environment without bunker's secrets)")
	f.BoolVar(&o.full, "full", false, "read every file again (full backup)")
	f.BoolVar(&o.differential, "differential", false, "compare against the last full backup")
	f.StringVar(&o.parent, "parent", "", "use this snapshot as the parent")
	f.BoolVar(&o.noXattrs, "no-xattrs", false, "do not store extended attributes")
	f.BoolVar(&o.withAtime, "with-atime", false, "store access times (they change whenever a directory is read, so every backup then rewrites its trees)")
	f.StringArrayVar(&o.filesFrom, "files-from", nil, "read paths to back up from a `file` (one per line)")
	return cmd
}

// dryRunRepo hashes and looks up blobs but stores nothing.
type dryRunRepo struct {
	*repository.Repository
	mu   sync.Mutex
	seen map[[33]byte]bool
}

func (d *dryRunRepo) SaveBlobWithID(ctx context.Context, t pack.BlobType, id archiver.ID, data []byte) (archiver.ID, bool, error) {
	if d.Index().Has(id, t) {
		return id, false, nil
	}
	var k [33]byte
	copy(k[:], id[:])
	k[32] = byte(t)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen[k] {
		return id, false, nil
	}
	d.seen[k] = true
	return id, true, nil
}

func (d *dryRunRepo) Flush(ctx context.Context) error { return nil }

func splitTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		for _, p := range strings.Split(t, ",") {
			if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func (a *App) runBackup(ctx context.Context, o backupOptions, args []string) error {
	var command []string
	paths := args
	if o.stdinCommand {
		if len(args) == 0 {
			return errors.New("--stdin-from-command needs a command after --")
		}
		command, paths = args, nil
	}
	for _, ff := range o.filesFrom {
		b, err := os.ReadFile(ff)
		if err != nil {
			return fmt.Errorf("--files-from: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimRight(line, "\r"); line != "" && !strings.HasPrefix(line, "#") {
				paths = append(paths, line)
			}
		}
	}
	stream := o.stdin || o.stdinCommand
	if stream && len(paths) > 0 {
		return errors.New("give either paths or --stdin / --stdin-from-command, not both")
	}
	if !stream && len(paths) == 0 {
		return errors.New("nothing to back up: give at least one path (or --stdin)")
	}
	if o.full && o.differential {
		return errors.New("--full and --differential exclude each other")
	}
	if stream {
		if err := tree.ValidName(o.stdinFilename); err != nil {
			return fmt.Errorf("--stdin-filename: %w", err)
		}
	}
	var absPaths []string
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(abs); err != nil {
			return fmt.Errorf("source %s: %w", p, err)
		}
		absPaths = append(absPaths, filepath.Clean(abs))
	}
	slices.Sort(absPaths)
	absPaths = slices.Compact(absPaths)

	var matcher *exclude.Matcher
	if !stream {
		ifPresent := slices.Clone(o.excludeIfPresent)
		m, err := exclude.New(exclude.Options{Patterns: o.excludes, IPatterns: o.iexcludes, PatternFiles: o.excludeFiles, IfPresent: ifPresent, ExcludeCaches: o.excludeCaches})
		if err != nil {
			return err
		}
		matcher = m
	}

	r, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	var sess *repository.Session
	if o.dryRun {
		// Writes nothing, so it needs no session.
		if err := r.LoadIndex(ctx, false); err != nil {
			return fmt.Errorf("load index: %w", err)
		}
	} else {
		s, adopted, err := r.BeginWrite(ctx, "backup")
		if err != nil {
			return err
		}
		sess = s
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
	}
	a.setMemoryBudget(r)

	host := o.host
	if host == "" {
		host, _ = os.Hostname()
	}
	snapPaths := absPaths
	if stream {
		snapPaths = []string{"/" + o.stdinFilename}
	}
	sn := snapshot.New(snapPaths, splitTags(o.tags), host, start)
	sn.Program = "bunker " + Version
	sn.Excludes = append(slices.Clone(o.excludes), o.iexcludes...)

	// Choose the parent.
	var parent *snapshot.Snapshot
	if !stream && !o.full {
		all, _, err := snapshot.LoadAll(ctx, r)
		if err != nil {
			return err
		}
		if o.parent != "" {
			parent, err = snapshot.Find(all, o.parent, snapshot.Filter{})
			if err != nil {
				return fmt.Errorf("--parent: %w", err)
			}
		} else {
			for i := len(all) - 1; i >= 0; i-- {
				c := all[i]
				if c.Hostname != host || !slices.Equal(c.Paths, snapPaths) {
					continue
				}
				if o.differential && c.Kind != snapshot.KindFull {
					continue
				}
				parent = c
				break
			}
		}
	}
	switch {
	case stream:
		sn.Kind = snapshot.KindStream
	case parent == nil:
		sn.Kind = snapshot.KindFull
	case o.differential:
		sn.Kind = snapshot.KindDifferential
		sn.Parent, sn.Base = &parent.ID, &parent.ID
	default:
		sn.Kind = snapshot.KindIncremental
		sn.Parent = &parent.ID
		if parent.Kind == snapshot.KindFull {
			sn.Base = &parent.ID
		} else if parent.Base != nil {
			sn.Base = parent.Base
		}
	}

	cfg := r.Config()
	var target archiver.Repo = r
	if o.dryRun {
		target = &dryRunRepo{Repository: r, seen: map[[33]byte]bool{}}
	}
	var errMu sync.Mutex
	var sourceErrors []string
	opts := archiver.Options{
		Chunker:       cfg.Chunker.Params(),
		OneFileSystem: o.oneFileSystem,
		NoXattrs:      o.noXattrs,
		WithAtime:     o.withAtime,
		OnError: func(path string, err error) error {
			errMu.Lock()
			sourceErrors = append(sourceErrors, path)
			errMu.Unlock()
			a.out.warnf("%s: %v", path, unwrapPathErr(err))
			return nil
		},
	}
	if matcher != nil {
		opts.Excluder = matcher
	}
	if parent != nil {
		opts.Parent = parent.Tree
		a.out.infof("using parent snapshot %s (%s)", parent.ShortID(), parent.Kind)
	}
	arch, err := archiver.New(target, opts)
	if err != nil {
		return err
	}
	var scan *scanner
	if !stream && (a.out.progress || a.g.json) {
		scanCtx, cancelScan := context.WithCancel(ctx)
		defer cancelScan()
		scan = startScan(scanCtx, absPaths, matcher)
	}
	stopProgress := a.out.ticker(200*time.Millisecond, func(final bool) { a.backupProgress(arch, scan, start) })

	var root archiver.ID
	var backupErr error
	if stream {
		root, backupErr = a.backupStream(ctx, arch, o, command, sn)
	} else {
		root, backupErr = arch.Snapshot(ctx, absPaths)
	}
	stopProgress()
	if backupErr == nil {
		backupErr = target.Flush(ctx)
	} else if !o.dryRun {
		// Keep what was uploaded findable for the next run.
		fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = r.Flush(fctx)
		cancel()
	}
	if backupErr != nil {
		return fmt.Errorf("backup failed, no snapshot saved: %w", backupErr)
	}
	st := &arch.Stats
	ws := r.Stats()
	sn.Tree = root
	sn.Summary = &snapshot.Summary{
		Start: start, End: time.Now(),
		Files: st.Files.Load(), Dirs: st.Dirs.Load(),
		FilesNew: st.FilesNew.Load(), FilesChanged: st.FilesChanged.Load(), FilesUnchanged: st.FilesUnchanged.Load(),
		FilesRead: st.FilesRead.Load(), Errors: st.Errors.Load(),
		BytesRead: st.BytesRead.Load(), TotalBytes: st.TotalBytes.Load(),
		BlobsAdded: int64(ws.Blobs), BytesAdded: ws.BlobBytes, BytesStored: ws.StoredBytes,
	}
	if o.dryRun {
		sn.Summary.BlobsAdded, sn.Summary.BytesAdded = st.BlobsAdded.Load(), st.BytesAdded.Load()
	}
	if stream {
		sn.Summary.Files, sn.Summary.FilesRead, sn.Summary.TotalBytes = 1, 1, st.BytesRead.Load()
	}
	if !o.dryRun {
		if _, err := sess.Commit(ctx, sn); err != nil {
			return err
		}
	}
	a.printBackupSummary(sn, ws, o.dryRun)
	if n := len(sourceErrors); n > 0 {
		return &partialError{msg: fmt.Sprintf("snapshot %s saved, but %d source entries could not be read", sn.ShortID(), n)}
	}
	return nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (a *App) backupStream(ctx context.Context, arch *archiver.Archiver, o backupOptions, command []string, sn *snapshot.Snapshot) (archiver.ID, error) {
	var rd io.Reader = a.Stdin
	var cmd *exec.Cmd
	var stderr bytes.Buffer
	if command != nil {
		cmd = exec.CommandContext(ctx, command[0], command[1:]...)
		// The command's output is stored in the repository: it must not
		// be able to print the repository's password or bunker's other
		// secrets (the user passes one on the command line if needed).
		cmd.Env = source.ChildEnv()
		cmd.Stderr = io.MultiWriter(&stderr, a.Stderr)
		out, err := cmd.StdoutPipe()
		if err != nil {
			return archiver.ID{}, err
		}
		if err := cmd.Start(); err != nil {
			return archiver.ID{}, fmt.Errorf("start %s: %w", command[0], err)
		}
		rd = out
	}
	ids, n, err := arch.SaveStream(ctx, rd)
	if cmd != nil {
		if err != nil {
			_ = cmd.Process.Kill()
		}
		werr := cmd.Wait()
		if err == nil && werr != nil {
			msg := strings.TrimSpace(stderr.String())
			if len(msg) > 500 {
				msg = "…" + msg[len(msg)-500:]
			}
			if msg != "" {
				return archiver.ID{}, fmt.Errorf("command %q failed: %v: %s", strings.Join(command, " "), werr, msg)
			}
			return archiver.ID{}, fmt.Errorf("command %q failed: %v", strings.Join(command, " "), werr)
		}
	}
	if err != nil {
		return archiver.ID{}, fmt.Errorf("read input: %w", err)
	}
	now := time.Now()
	node := &tree.Node{Name: tree.RawString(o.stdinFilename), Type: tree.TypeFile, Mode: 0o644, ModTime: now,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Size: uint64(n), Content: ids}
	if sn.Username != "" {
		node.User = sn.Username
	}
	return arch.SaveTree(ctx, &tree.Tree{Nodes: []*tree.Node{node}})
}

func (a *App) backupProgress(arch *archiver.Archiver, scan *scanner, start time.Time) {
	st := &arch.Stats
	elapsed := time.Since(start)
	read := st.BytesRead.Load()
	done := st.TotalBytes.Load()
	var total int64
	pct, eta := "", ""
	if scan != nil {
		total = scan.bytes.Load()
		if total > 0 {
			pct = fmt.Sprintf("%5.1f%% ", min(100, float64(done)/float64(total)*100))
		}
		if scan.done.Load() && done > 0 && total > done {
			eta = " ETA " + formatDuration(time.Duration(float64(elapsed)*float64(total-done)/float64(done)))
		}
	}
	if a.g.json {
		m := map[string]any{"message_type": "status", "seconds_elapsed": int(elapsed.Seconds()),
			"files_done": st.Files.Load(), "bytes_done": done, "bytes_read": read, "bytes_added": st.BytesAdded.Load(), "errors": st.Errors.Load()}
		if scan != nil {
			m["total_files"], m["total_bytes"], m["scan_finished"] = scan.files.Load(), total, scan.done.Load()
		}
		a.out.jsonLine(m)
		return
	}
	cur := ""
	if p := st.CurrentFile.Load(); p != nil {
		cur = *p
		if len(cur) > 40 {
			cur = "…" + cur[len(cur)-39:]
		}
	}
	a.out.status(fmt.Sprintf("[%s] %s%d files, %s of %s, %s added, %s%s  %s", formatDuration(elapsed), pct, st.Files.Load(),
		formatBytes(done), formatBytes(total), formatBytes(st.BytesAdded.Load()), formatRate(read, elapsed), eta, cur))
}

func (a *App) printBackupSummary(sn *snapshot.Snapshot, ws repository.WriteStats, dryRun bool) {
	s := sn.Summary
	dur := s.End.Sub(s.Start)
	if a.g.json {
		a.out.jsonLine(map[string]any{
			"message_type": "summary", "snapshot_id": sn.ID.String(), "dry_run": dryRun, "kind": sn.Kind,
			"files_new": s.FilesNew, "files_changed": s.FilesChanged, "files_unmodified": s.FilesUnchanged,
			"files": s.Files, "dirs": s.Dirs, "files_read": s.FilesRead, "errors": s.Errors,
			"bytes_read": s.BytesRead, "total_bytes_processed": s.TotalBytes,
			"data_blobs_added": s.BlobsAdded, "data_added": s.BytesAdded, "data_added_packed": s.BytesStored,
			"packs_written": ws.Packs, "duration_seconds": dur.Seconds(),
		})
		return
	}
	a.out.textf("Files:       %d new, %d changed, %d unmodified", s.FilesNew, s.FilesChanged, s.FilesUnchanged)
	a.out.textf("Dirs:        %d", s.Dirs)
	a.out.textf("Added:       %s (%s stored)", formatBytes(s.BytesAdded), formatBytes(s.BytesStored))
	a.out.textf("Processed:   %s in %s (%s read)", formatBytes(s.TotalBytes), formatDuration(dur), formatBytes(s.BytesRead))
	if dryRun {
		a.out.textf("dry run: nothing was written")
		return
	}
	a.out.textf("snapshot %s saved (%s)", sn.ShortID(), sn.Kind)
}
