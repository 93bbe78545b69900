package app

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
)

// Progress is how far a long use case has come.
type Progress struct {
	Op string // "backup", "check", "restore", …
	// Source is the source of a source backup (SourceBackup: "postgres",
	// …), whose files are streams written as they come: there is no
	// scan and Bytes is BytesRead. Empty for files and single streams.
	Source  string
	Elapsed time.Duration
	// Files and Bytes are done so far; with Scanned, FilesTotal and
	// BytesTotal are what a scan running alongside has found so far,
	// final when ScanDone.
	Files, FilesTotal int64
	Bytes, BytesTotal int64
	Scanned, ScanDone bool
	BytesRead         int64
	BytesAdded        int64
	Errors            int64
	Current           string // the file being read
	// Packs and PacksTotal are the packs read so far and to read (a
	// check).
	Packs, PacksTotal int64
	Final             bool
}

// Done is the share of the work done (0 to 1) and an estimate of the time
// left at the pace so far, when the total is known: packs for a check,
// snapshots for a copy, bytes otherwise (for a backup, once its scan has finished). left is -1
// while nothing is done yet.
func (p Progress) Done() (frac float64, left time.Duration, known bool) {
	done, total := p.Bytes, p.BytesTotal
	switch {
	case p.Op == "check":
		done, total = p.Packs, p.PacksTotal
	case p.Op == "copy":
		done, total = p.Files, p.FilesTotal
	case p.Source != "", p.Scanned && !p.ScanDone:
		return 0, 0, false
	}
	if total <= 0 {
		return 0, 0, false
	}
	frac = min(1, float64(done)/float64(total))
	left = -1
	if done > 0 {
		left = time.Duration(float64(p.Elapsed) * float64(max(total-done, 0)) / float64(done))
	}
	return frac, left, true
}

// Backup is a backup of files, or of one stream, into a repository.
type Backup struct {
	Repo Repo
	// Paths are the files and directories to back up. Relative paths
	// are taken from the working directory.
	Paths   []string
	Exclude exclude.Options
	// OneFileSystem does not cross filesystem boundaries; NoXattrs
	// stores no extended attributes; WithAtime stores access times.
	OneFileSystem, NoXattrs, WithAtime bool
	// FileChanged, if set, is told how each regular file compares with
	// the parent (new, modified, unchanged), from several goroutines at
	// once.
	FileChanged func(path string, change archiver.FileChange)

	// Stream, when set, is backed up instead of Paths, as the one file
	// StreamName; with StreamCommand set, that command's output is
	// (it gets the environment without bunker's secrets, and the
	// backup fails when it does).
	Stream        io.Reader
	StreamCommand []string
	StreamName    string
	// StreamStderr, when set, also receives the command's standard error.
	StreamStderr io.Writer

	Tags []string
	Host string // default: this machine's name
	// Full reads every file again; Differential compares with the last
	// full backup of the same paths; Parent names the parent snapshot
	// (default: the last one of the same host and paths).
	Full, Differential bool
	Parent             string
	// DryRun reads and chunks everything and writes nothing.
	DryRun bool
	// Scan counts the files alongside the backup, for a percentage and
	// an ETA in Progress.
	Scan bool
}

// BackupResult is what a backup did.
type BackupResult struct {
	// Snapshot is the saved snapshot (not saved on a dry run: its ID is
	// then zero), with its Summary.
	Snapshot *snapshot.Snapshot
	Write    repository.WriteStats
	// SourceErrors are the source entries that could not be read; the
	// snapshot holds the rest and the error is a PartialError.
	SourceErrors []string
}

// Validate checks what a backup can check before it opens anything:
// paths or a stream (not both, not neither), full or differential, the
// stream's file name, and that every path exists.
func (b *Backup) Validate() error {
	stream := b.Stream != nil || b.StreamCommand != nil
	switch {
	case stream && len(b.Paths) > 0:
		return errors.New("give either paths or a stream to back up (--stdin, --stdin-from-command), not both")
	case !stream && len(b.Paths) == 0:
		return errors.New("nothing to back up: give at least one path (or a stream)")
	case b.Full && b.Differential:
		return errors.New("full and differential exclude each other")
	}
	if stream && b.StreamName != "" {
		if err := tree.ValidName(b.StreamName); err != nil {
			return fmt.Errorf("stream file name: %w", err)
		}
	}
	for _, p := range b.Paths {
		if _, err := os.Lstat(p); err != nil {
			return fmt.Errorf("source %s: %w", p, err)
		}
	}
	return nil
}

// RunBackup backs up files or a stream into a repository and saves a
// snapshot. When some source entries cannot be read the snapshot is still
// saved and the error is a *PartialError (the result is complete).
func (a *App) RunBackup(ctx context.Context, b Backup) (*BackupResult, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	stream := b.Stream != nil || b.StreamCommand != nil
	if b.StreamName == "" {
		b.StreamName = "stdin"
	}
	var absPaths []string
	for _, p := range b.Paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		absPaths = append(absPaths, filepath.Clean(abs))
	}
	slices.Sort(absPaths)
	absPaths = slices.Compact(absPaths)

	var matcher *exclude.Matcher
	if !stream {
		m, err := exclude.New(b.Exclude)
		if err != nil {
			return nil, err
		}
		matcher = m
	}

	r, err := a.Open(ctx, b.Repo)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var sess *repository.Session
	if b.DryRun {
		// Writes nothing, so it needs no session.
		if err := r.LoadIndex(ctx, false); err != nil {
			return nil, fmt.Errorf("load index: %w", err)
		}
	} else {
		s, err := a.beginBackup(ctx, r)
		if err != nil {
			return nil, err
		}
		sess = s
		defer a.endSession(sess)
	}
	a.SetMemoryBudget(r)

	host := b.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	snapPaths := absPaths
	if stream {
		snapPaths = []string{"/" + b.StreamName}
	}
	sn := snapshot.New(snapPaths, SplitTags(b.Tags), host, start)
	sn.Program = a.Program
	sn.Excludes = append(slices.Clone(b.Exclude.Patterns), b.Exclude.IPatterns...)

	parent, err := a.chooseParent(ctx, r, b, host, snapPaths, stream)
	if err != nil {
		return nil, err
	}
	setKind(sn, parent, stream, b.Differential)

	cfg := r.Config()
	var target archiver.Repo = r
	if b.DryRun {
		target = &dryRunRepo{Repository: r, seen: map[[33]byte]bool{}}
	}
	var errMu sync.Mutex
	var sourceErrors []string
	opts := archiver.Options{
		Chunker:       cfg.Chunker.Params(),
		OneFileSystem: b.OneFileSystem,
		NoXattrs:      b.NoXattrs,
		WithAtime:     b.WithAtime,
		OnError: func(path string, err error) error {
			errMu.Lock()
			sourceErrors = append(sourceErrors, path)
			errMu.Unlock()
			a.warnf("%s: %v", path, unwrapPathErr(err))
			return nil
		},
		OnFile: b.FileChanged,
	}
	if matcher != nil {
		opts.Excluder = matcher
	}
	if parent != nil {
		opts.Parent = parent.Tree
		a.infof("using parent snapshot %s (%s)", parent.ShortID(), parent.Kind)
	}
	arch, err := archiver.New(target, opts)
	if err != nil {
		return nil, err
	}
	var scan *scanner
	if !stream && b.Scan && a.Events != nil {
		scanCtx, cancelScan := context.WithCancel(ctx)
		defer cancelScan()
		scan = startScan(scanCtx, absPaths, matcher)
	}
	stopProgress := a.ticker(func(final bool) { a.progress(backupProgress(arch, scan, start, final)) })

	var root archiver.ID
	var backupErr error
	if stream {
		root, backupErr = backupStream(ctx, arch, b, sn)
	} else {
		root, backupErr = arch.Snapshot(ctx, absPaths)
	}
	stopProgress()
	if backupErr == nil && b.DryRun {
		backupErr = target.Flush(ctx)
	} else if backupErr != nil && !b.DryRun {
		// Keep what was uploaded findable for the next run.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		_ = r.Flush(fctx)
		cancel()
	}
	if backupErr != nil {
		return nil, fmt.Errorf("backup failed, no snapshot saved: %w", backupErr)
	}
	sn.Tree = root
	sn.Summary = backupSummary(arch, start, stream)
	res := &BackupResult{Snapshot: sn, SourceErrors: sourceErrors}
	if b.DryRun {
		res.Write = r.Stats()
		st := &arch.Stats
		sn.Summary.BlobsAdded, sn.Summary.BytesAdded = st.BlobsAdded.Load(), st.BytesAdded.Load()
	} else {
		if err := commit(ctx, r, sess, sn); err != nil {
			return nil, err
		}
		res.Write = r.Stats()
	}
	if n := len(sourceErrors); n > 0 {
		return res, &PartialError{Msg: fmt.Sprintf("snapshot %s saved, but %d source entries could not be read", sn.ShortID(), n)}
	}
	return res, nil
}

// commit flushes what the writer stored, so that sn's Summary counts it,
// and commits sn through the session (commit check, save, end).
func commit(ctx context.Context, r *repository.Repository, sess *repository.Session, sn *snapshot.Snapshot) error {
	if err := r.Flush(ctx); err != nil {
		return fmt.Errorf("backup failed, no snapshot saved: %w", err)
	}
	ws := r.Stats()
	sn.Summary.BlobsAdded, sn.Summary.BytesAdded, sn.Summary.BytesStored = int64(ws.Blobs), ws.BlobBytes, ws.StoredBytes
	_, err := sess.Commit(ctx, sn)
	return err
}

// beginBackup starts a backup's write session, noting the packs it
// adopts from an interrupted backup.
func (a *App) beginBackup(ctx context.Context, r *repository.Repository) (*repository.Session, error) {
	sess, adopted, err := r.BeginWrite(ctx, "backup")
	if err != nil {
		return nil, err
	}
	if adopted.Packs > 0 {
		a.infof("resuming: reusing %d packs (%s) left by an interrupted backup", adopted.Packs, formatBytes(adopted.Bytes))
	}
	return sess, nil
}

// endSession ends a writer's session when its use case returns, warning
// when the session object stays behind (it expires by itself).
func (a *App) endSession(sess *repository.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sess.End(ctx); err != nil {
		a.warnf("could not remove session marker %s: %v (it expires by itself)", sess.Name, err)
	}
}

// chooseParent picks the snapshot a backup compares with: the one named,
// else the newest of the same host and paths (of kind full for a
// differential backup); none for a full backup or a stream.
func (a *App) chooseParent(ctx context.Context, r *repository.Repository, b Backup, host string, paths []string, stream bool) (*snapshot.Snapshot, error) {
	if stream || b.Full {
		return nil, nil
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	if b.Parent != "" {
		p, err := snapshot.Find(all, b.Parent, snapshot.Filter{})
		if err != nil {
			return nil, fmt.Errorf("parent: %w", err)
		}
		return p, nil
	}
	for i := len(all) - 1; i >= 0; i-- {
		c := all[i]
		if c.Hostname != host || !slices.Equal(c.Paths, paths) {
			continue
		}
		if b.Differential && c.Kind != snapshot.KindFull {
			continue
		}
		return c, nil
	}
	return nil, nil
}

// setKind records the backup's kind and its parent and base.
func setKind(sn, parent *snapshot.Snapshot, stream, differential bool) {
	switch {
	case stream:
		sn.Kind = snapshot.KindStream
	case parent == nil:
		sn.Kind = snapshot.KindFull
	case differential:
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
}

func backupSummary(arch *archiver.Archiver, start time.Time, stream bool) *snapshot.Summary {
	st := &arch.Stats
	s := &snapshot.Summary{
		Start: start, End: time.Now(),
		Files: st.Files.Load(), Dirs: st.Dirs.Load(),
		FilesNew: st.FilesNew.Load(), FilesChanged: st.FilesChanged.Load(), FilesUnchanged: st.FilesUnchanged.Load(),
		FilesRead: st.FilesRead.Load(), Errors: st.Errors.Load(),
		BytesRead: st.BytesRead.Load(), TotalBytes: st.TotalBytes.Load(),
	}
	if stream {
		s.Files, s.FilesRead, s.TotalBytes = 1, 1, st.BytesRead.Load()
	}
	return s
}

func backupProgress(arch *archiver.Archiver, scan *scanner, start time.Time, final bool) Progress {
	st := &arch.Stats
	p := Progress{Op: "backup", Elapsed: time.Since(start), Files: st.Files.Load(), Bytes: st.TotalBytes.Load(),
		BytesRead: st.BytesRead.Load(), BytesAdded: st.BytesAdded.Load(), Errors: st.Errors.Load(), Final: final}
	if scan != nil {
		p.Scanned = true
		p.FilesTotal, p.BytesTotal, p.ScanDone = scan.files.Load(), scan.bytes.Load(), scan.done.Load()
	}
	if c := st.CurrentFile.Load(); c != nil {
		p.Current = *c
	}
	return p
}

// ticker calls fn every ProgressInterval until the returned stop, which
// calls it once more with final set. Without Events it does nothing.
func (a *App) ticker(fn func(final bool)) (stop func()) {
	if a.Events == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fn(false)
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		fn(true)
	}
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// backupStream stores the stream (or the command's output) as the one
// file of the snapshot.
func backupStream(ctx context.Context, arch *archiver.Archiver, b Backup, sn *snapshot.Snapshot) (archiver.ID, error) {
	rd := b.Stream
	var cmd *exec.Cmd
	var stderr bytes.Buffer
	if command := b.StreamCommand; command != nil {
		if len(command) == 0 {
			return archiver.ID{}, errors.New("no command to back up the output of")
		}
		cmd = exec.CommandContext(ctx, command[0], command[1:]...)
		// The command's output is stored in the repository: it must not
		// be able to print the repository's password or bunker's other
		// secrets (the user passes one on the command line if needed).
		cmd.Env = source.ChildEnv()
		cmd.Stderr = &stderr
		if b.StreamStderr != nil {
			cmd.Stderr = io.MultiWriter(&stderr, b.StreamStderr)
		}
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
				return archiver.ID{}, fmt.Errorf("command %q failed: %v: %s", strings.Join(b.StreamCommand, " "), werr, msg)
			}
			return archiver.ID{}, fmt.Errorf("command %q failed: %v", strings.Join(b.StreamCommand, " "), werr)
		}
	}
	if err != nil {
		return archiver.ID{}, fmt.Errorf("read input: %w", err)
	}
	now := time.Now()
	node := &tree.Node{Name: tree.RawString(b.StreamName), Type: tree.TypeFile, Mode: 0o644, ModTime: now,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Size: uint64(n), Content: ids}
	if sn.Username != "" {
		node.User = sn.Username
	}
	return arch.SaveTree(ctx, &tree.Tree{Nodes: []*tree.Node{node}})
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

// ReadFilesFrom reads the paths listed in files, one per line; empty
// lines and lines starting with # are skipped (restic's --files-from).
func ReadFilesFrom(files []string) ([]string, error) {
	var paths []string
	for _, ff := range files {
		data, err := os.ReadFile(ff)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimRight(line, "\r"); line != "" && !strings.HasPrefix(line, "#") {
				paths = append(paths, line)
			}
		}
	}
	return paths, nil
}

// SplitTags splits comma-separated tags and drops empty and repeated
// ones.
func SplitTags(tags []string) []string {
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
