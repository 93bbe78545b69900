package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/archiver"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/exclude"
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

func (a *App) runBackup(ctx context.Context, o backupOptions, args []string) error {
	b := app.Backup{
		Exclude: exclude.Options{Patterns: o.excludes, IPatterns: o.iexcludes, PatternFiles: o.excludeFiles,
			IfPresent: slices.Clone(o.excludeIfPresent), ExcludeCaches: o.excludeCaches},
		OneFileSystem: o.oneFileSystem, NoXattrs: o.noXattrs, WithAtime: o.withAtime,
		Tags: o.tags, Host: o.host, Full: o.full, Differential: o.differential, Parent: o.parent,
		DryRun: o.dryRun, Scan: a.out.progress || a.g.json,
	}
	paths := args
	if o.stdinCommand {
		if len(args) == 0 {
			return errors.New("--stdin-from-command needs a command after --")
		}
		b.StreamCommand, b.StreamStderr, paths = args, a.Stderr, nil
	} else if o.stdin {
		b.Stream = a.Stdin
	}
	listed, err := app.ReadFilesFrom(o.filesFrom)
	if err != nil {
		return fmt.Errorf("--files-from: %w", err)
	}
	b.Paths = append(paths, listed...)
	if o.stdin || o.stdinCommand {
		b.StreamName = o.stdinFilename
	}
	// The paths' own errors come before asking for a password.
	if err := b.Validate(); err != nil {
		return err
	}
	if b.Repo, err = a.repoRef(ctx); err != nil {
		return err
	}
	c, err := a.core()
	if err != nil {
		return err
	}
	if a.g.verbose >= 2 {
		b.FileChanged = a.printFileChange
	}
	res, err := c.RunBackup(ctx, b)
	if res != nil {
		a.printBackupSummary(res.Snapshot, res.Write, o.dryRun)
	}
	return err
}

// printFileChange lists a file as restic's -vv does: new, modified or
// unchanged (a verbose_status line with --json).
func (a *App) printFileChange(path string, c archiver.FileChange) {
	a.out.result(map[string]any{"message_type": "verbose_status", "action": c.String(), "item": path}, "%-9s %s", c, path)
}

// summaryJSON is a snapshot's summary under the names of the backup
// summary line (restic's), in every JSON output (docs/JSON.md).
func summaryJSON(s *snapshot.Summary) map[string]any {
	return map[string]any{"files_new": s.FilesNew, "files_changed": s.FilesChanged, "files_unmodified": s.FilesUnchanged,
		"files": s.Files, "dirs": s.Dirs, "files_read": s.FilesRead, "errors": s.Errors,
		"bytes_read": s.BytesRead, "total_bytes_processed": s.TotalBytes,
		"data_blobs_added": s.BlobsAdded, "data_added": s.BytesAdded, "data_added_packed": s.BytesStored,
		"backup_start": s.Start, "backup_end": s.End}
}

// backupSummaryJSON is the summary line of a backup, of files or of a
// source: the snapshot's summary and what the write stored.
func backupSummaryJSON(sn *snapshot.Snapshot, ws repository.WriteStats, dryRun bool) map[string]any {
	m := summaryJSON(sn.Summary)
	m["message_type"], m["snapshot_id"], m["dry_run"], m["kind"] = "summary", sn.ID.String(), dryRun, sn.Kind
	m["packs_written"], m["duration_seconds"] = ws.Packs, sn.Summary.End.Sub(sn.Summary.Start).Seconds()
	return m
}

func (a *App) printBackupSummary(sn *snapshot.Snapshot, ws repository.WriteStats, dryRun bool) {
	s := sn.Summary
	dur := s.End.Sub(s.Start)
	if a.g.json {
		a.out.jsonLine(backupSummaryJSON(sn, ws, dryRun))
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
