package app_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
)

// TestProgressDone: the share done and the time left (restic's
// percent_done and seconds_remaining) are known only with a total.
func TestProgressDone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     app.Progress
		frac  float64
		left  time.Duration
		known bool
	}{
		{"backup, scan finished", app.Progress{Op: "backup", Elapsed: 10 * time.Second, Bytes: 25, BytesTotal: 100, Scanned: true, ScanDone: true}, 0.25, 30 * time.Second, true},
		{"backup, still scanning", app.Progress{Op: "backup", Elapsed: time.Second, Bytes: 25, BytesTotal: 100, Scanned: true}, 0, 0, false},
		{"a stream: no total", app.Progress{Op: "backup", Bytes: 25}, 0, 0, false},
		{"a database: no total", app.Progress{Op: "backup", Source: "postgres", Bytes: 25, BytesTotal: 100}, 0, 0, false},
		{"restore, nothing yet", app.Progress{Op: "restore", Elapsed: time.Second, BytesTotal: 100}, 0, -1, true},
		{"restore, done", app.Progress{Op: "restore", Elapsed: time.Second, Bytes: 100, BytesTotal: 100}, 1, 0, true},
		{"check by packs", app.Progress{Op: "check", Elapsed: 4 * time.Second, Packs: 1, PacksTotal: 5, Bytes: 99}, 0.2, 16 * time.Second, true},
	} {
		frac, left, known := tc.p.Done()
		if frac != tc.frac || left != tc.left || known != tc.known {
			t.Errorf("%s: %v %v %v, want %v %v %v", tc.name, frac, left, known, tc.frac, tc.left, tc.known)
		}
	}
}

// TestCopyAndPruneProgress: copy reports snapshots done of those to copy,
// ending with a final event at the total; prune reports its phases.
func TestCopyAndPruneProgress(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	rec := &recorder{}
	a := &app.App{Events: rec}
	src, dst := initRepo(t, a), initRepo(t, a)
	backupFiles(t, ctx, a, src)
	backupFiles(t, ctx, a, src)
	rec.progress = nil
	if _, err := a.Copy(ctx, app.CopyRequest{From: src, To: dst}); err != nil {
		t.Fatal(err)
	}
	last := rec.progress[len(rec.progress)-1]
	if last.Op != "copy" || !last.Final || last.Files != 2 || last.FilesTotal != 2 || last.BytesAdded <= 0 {
		t.Errorf("copy's last progress %+v", last)
	}
	if frac, _, ok := last.Done(); !ok || frac != 1 {
		t.Errorf("copy's last progress is %v done (known %v)", frac, ok)
	}
	rec.progress = nil
	if _, err := a.Prune(ctx, app.PruneRequest{Repo: src}); err != nil {
		t.Fatal(err)
	}
	var phases []string
	for _, p := range rec.progress {
		if p.Op == "prune" {
			phases = append(phases, p.Current)
		}
	}
	if !slices.Contains(phases, "loading index") {
		t.Errorf("prune's phases: %q", phases)
	}
}
