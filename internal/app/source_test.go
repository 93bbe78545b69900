package app_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/crypto"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/source"
	"github.com/bunkerbackup/bunker/internal/storage/mem"
)

// events records what a use case says.
type events struct {
	mu       sync.Mutex
	warnings []string
	progress []app.Progress
}

func (e *events) Warn(msg string) { e.mu.Lock(); e.warnings = append(e.warnings, msg); e.mu.Unlock() }
func (e *events) Info(string)     {}
func (e *events) Progress(p app.Progress) {
	e.mu.Lock()
	e.progress = append(e.progress, p)
	e.mu.Unlock()
}

func newRepo(t *testing.T) app.Repo {
	t.Helper()
	be := mem.New()
	r, err := repository.Init(context.Background(), be, "pw", repository.Options{KDF: crypto.WeakKDF(), ChunkMin: 4 << 10, ChunkAvg: 16 << 10, ChunkMax: 64 << 10, PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	return app.Repo{Location: "mem:", Password: "pw", Backend: be}
}

func snapshots(t *testing.T, a *app.App, repo app.Repo) []*snapshot.Snapshot {
	t.Helper()
	ctx := context.Background()
	r, err := a.Open(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// writeFiles is a source that writes its files and returns meta.
func writeFiles(files map[string]string, meta map[string]string) func(context.Context, source.Sink) (map[string]string, error) {
	return func(ctx context.Context, w source.Sink) (map[string]string, error) {
		for name, data := range files {
			if _, err := w.WriteFile(ctx, name, strings.NewReader(data), &source.Meta{Mode: 0o600}); err != nil {
				return nil, err
			}
		}
		return meta, nil
	}
}

// TestRunSourceBackup: a source backup commits one snapshot with the
// source's metadata, a summary of what it wrote and the parent its
// Parent picks; a source that fails saves nothing and its error is kept.
func TestRunSourceBackup(t *testing.T) {
	ctx := context.Background()
	ev := &events{}
	a := &app.App{Events: ev, Program: "bunker test"}
	defer a.Close()
	repo := newRepo(t)
	files := map[string]string{"db/a.dump": strings.Repeat("alpha ", 1000), "db/b.dump": "bravo"}
	req := app.SourceBackup{Repo: repo, Source: "postgres", Paths: []string{"/postgres/h:5432/logical"}, Tags: []string{"a,b", "a"},
		Host: "db1", Kind: snapshot.KindFull, Save: writeFiles(files, map[string]string{"type": "logical", "source": "ignored"})}

	res, err := a.RunSourceBackup(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	sn := res.Snapshot
	if sn.Metadata["source"] != "postgres" || sn.Metadata["type"] != "logical" || sn.Kind != snapshot.KindFull ||
		sn.Hostname != "db1" || !slices.Equal(sn.Tags, []string{"a", "b"}) || sn.Program != "bunker test" || sn.Parent != nil {
		t.Errorf("snapshot %+v, metadata %v", sn, sn.Metadata)
	}
	if s := sn.Summary; s.Files != 2 || s.BytesRead != 6005 || s.BytesAdded == 0 || res.Write.Packs == 0 {
		t.Errorf("summary %+v, write %+v", s, res.Write)
	}
	last := ev.progress[len(ev.progress)-1]
	if !last.Final || last.Op != "backup" || last.Source != "postgres" || last.Files != 2 {
		t.Errorf("last progress %+v", last)
	}

	// The second backup: Parent sees the first among the same paths and
	// host, and its kind wins; the files' data is not stored again.
	req.Parent = func(same []*snapshot.Snapshot) (*snapshot.Snapshot, *snapshot.Snapshot, string) {
		if len(same) != 1 {
			t.Errorf("Parent got %d snapshots, want 1", len(same))
			return nil, nil, ""
		}
		return same[0], same[0], snapshot.KindIncremental
	}
	res2, err := a.RunSourceBackup(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if sn2 := res2.Snapshot; sn2.Kind != snapshot.KindIncremental || sn2.Parent == nil || *sn2.Parent != sn.ID ||
		sn2.Base == nil || *sn2.Base != sn.ID || res2.Write.DuplicateBytes != 6005 {
		t.Errorf("second snapshot %+v, summary %+v, write %+v", sn2, sn2.Summary, res2.Write)
	}

	// A failing source: nothing saved, the cause kept.
	cause := errors.New("pg_dump: connection lost")
	req.Parent = nil
	req.Save = func(ctx context.Context, w source.Sink) (map[string]string, error) {
		if _, err := w.WriteFile(ctx, "db/c.dump", strings.NewReader("partial"), &source.Meta{Mode: 0o600}); err != nil {
			return nil, err
		}
		return nil, cause
	}
	if _, err := a.RunSourceBackup(ctx, req); !errors.Is(err, cause) || !strings.Contains(err.Error(), "postgres backup failed, no snapshot saved") {
		t.Errorf("failing source: %v", err)
	}
	if n := len(snapshots(t, a, repo)); n != 2 {
		t.Errorf("%d snapshots after a failed backup, want 2", n)
	}
}

func TestSourceBackupValidate(t *testing.T) {
	save := writeFiles(nil, nil)
	for _, tc := range []struct {
		name string
		b    app.SourceBackup
		want string
	}{
		{"no source", app.SourceBackup{Paths: []string{"/x"}, Save: save}, "no source named"},
		{"no paths", app.SourceBackup{Source: "mysql", Save: save}, "no snapshot path"},
		{"no save", app.SourceBackup{Source: "mysql", Paths: []string{"/x"}}, "nothing to save"},
		{"ok", app.SourceBackup{Source: "mysql", Paths: []string{"/x"}, Save: save}, ""},
	} {
		err := tc.b.Validate()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
