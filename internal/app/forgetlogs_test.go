package app_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
)

// TestForgetExpiresLogsWithTheirBackups: a retention policy forgets, with
// the base backups it removes, the WAL archive snapshots that only they
// needed — never WAL inside a kept backup's range, never WAL of another
// server, and not when the log archives are left to their own expiry.
func TestForgetExpiresLogsWithTheirBackups(t *testing.T) {
	seg := func(n int) string { return fmt.Sprintf("0000000100000000%08X", n) }
	type snap struct{ name, kind, sys, typ, start, first, last string }
	snaps := []snap{
		{"base1", "full", "7001", "physical", seg(2), "", ""},
		{"wal-a", "continuous", "7001", "wal", "", seg(1), seg(3)},
		{"wal-b", "continuous", "7001", "wal", "", seg(4), seg(0xF)},
		{"base2", "full", "7001", "physical", seg(0x10), "", ""},
		{"wal-c", "continuous", "7001", "wal", "", seg(0x10), seg(0x12)},
		// Another server without any base backup: its WAL is kept.
		{"other", "continuous", "7002", "wal", "", seg(1), seg(2)},
	}
	setup := func(t *testing.T, extra ...snap) (*app.App, app.Repo, map[string]string) {
		a := &app.App{}
		t.Cleanup(func() { _ = a.Close() })
		repo := newRepo(t)
		ids := map[string]string{}
		for _, s := range append(slices.Clone(snaps), extra...) {
			meta := map[string]string{"source": "postgres", "type": s.typ, "system_identifier": s.sys, "timeline": "1"}
			path := "/postgres/" + s.sys + "/" + s.typ
			if strings.HasPrefix(s.name, "planted") {
				path += "/" + s.name // a group of its own: the policy keeps it
			}
			if s.typ == "physical" {
				meta["start_wal_file"] = s.start
			} else {
				meta["wal_first"], meta["wal_last"], meta["wal_files"] = s.first, s.last, s.first+","+s.last
			}
			res, err := a.RunSourceBackup(context.Background(), app.SourceBackup{Repo: repo, Source: "postgres", Paths: []string{path},
				Kind: s.kind, Host: "db", Save: writeFiles(map[string]string{"f": s.name}, meta)})
			if err != nil {
				t.Fatal(err)
			}
			ids[res.Snapshot.ID.String()] = s.name
		}
		return a, repo, ids
	}
	left := func(t *testing.T, a *app.App, repo app.Repo, ids map[string]string) []string {
		var names []string
		for _, sn := range snapshots(t, a, repo) {
			names = append(names, ids[sn.ID.String()])
		}
		slices.Sort(names)
		return names
	}
	ctx := context.Background()

	t.Run("expire", func(t *testing.T) {
		a, repo, ids := setup(t)
		res, err := a.Forget(ctx, app.ForgetRequest{Repo: repo, Policy: snapshot.Policy{Last: 1}, GroupBy: "host,paths"})
		if err != nil {
			t.Fatal(err)
		}
		var expired []string
		for _, e := range res.ExpiredLogs {
			expired = append(expired, ids[e.Snapshot.ID.String()])
		}
		slices.Sort(expired)
		if want := []string{"wal-a", "wal-b"}; !slices.Equal(expired, want) {
			t.Errorf("expired logs %v, want %v (WAL older than the kept base backup)", expired, want)
		}
		if got, want := left(t, a, repo, ids), []string{"base2", "other", "wal-c"}; !slices.Equal(got, want) {
			t.Errorf("left %v, want %v", got, want)
		}
	})
	t.Run("all kept", func(t *testing.T) {
		a, repo, ids := setup(t)
		res, err := a.Forget(ctx, app.ForgetRequest{Repo: repo, Policy: snapshot.Policy{Last: 2}, GroupBy: "host,paths"})
		if err != nil || len(res.Remove) != 0 {
			t.Fatalf("keep-last 2 removed %d, %v; want nothing (wal-a holds base1's start)", len(res.Remove), err)
		}
		if got := left(t, a, repo, ids); len(got) != len(snaps) {
			t.Errorf("left %v", got)
		}
	})
	t.Run("left alone", func(t *testing.T) {
		a, repo, ids := setup(t)
		res, err := a.Forget(ctx, app.ForgetRequest{Repo: repo, Policy: snapshot.Policy{Last: 1}, GroupBy: "host,paths", KeepLogArchives: true})
		if err != nil || len(res.ExpiredLogs) != 0 {
			t.Fatalf("KeepLogArchives: expired %d, %v", len(res.ExpiredLogs), err)
		}
		if got, want := left(t, a, repo, ids), []string{"base2", "other", "wal-a", "wal-b", "wal-c"}; !slices.Equal(got, want) {
			t.Errorf("left %v, want %v", got, want)
		}
	})
	// A writer without the maintenance credential plants base backups
	// of the same server: one claiming a later start, one whose start does
	// not parse, one of another server with a far start. The policy
	// keeps them (each is the newest of its group), and still no WAL a
	// real kept base backup reads goes: planted starts can only keep more
	// (an unreadable one keeps all of its server's WAL).
	t.Run("planted base backups", func(t *testing.T) {
		a, repo, ids := setup(t,
			snap{"planted-late", "full", "7001", "physical", seg(0x40), "", ""},
			snap{"planted-other", "full", "7002", "physical", seg(0x40), "", ""})
		if _, err := a.Forget(ctx, app.ForgetRequest{Repo: repo, Policy: snapshot.Policy{Last: 1}, GroupBy: "host,paths"}); err != nil {
			t.Fatal(err)
		}
		got := left(t, a, repo, ids)
		// "other" (server 7002) has no real base backup here: its base
		// backups may live in another repository, and a planted one must
		// not make the policy forget its WAL.
		for _, need := range []string{"base2", "wal-c", "other"} {
			if !slices.Contains(got, need) {
				t.Errorf("%s was forgotten (left %v): a planted base backup made a kept backup's WAL expire", need, got)
			}
		}
		a, repo, ids = setup(t, snap{"planted-garbage", "full", "7001", "physical", "not-a-segment", "", ""})
		if _, err := a.Forget(ctx, app.ForgetRequest{Repo: repo, Policy: snapshot.Policy{Last: 1}, GroupBy: "host,paths"}); err != nil {
			t.Fatal(err)
		}
		for _, need := range []string{"wal-a", "wal-b", "wal-c"} {
			if got := left(t, a, repo, ids); !slices.Contains(got, need) {
				t.Errorf("%s was forgotten (left %v) though a base backup of its server cannot be read", need, got)
			}
		}
	})
}
