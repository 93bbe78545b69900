package app_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/monitor"
	"github.com/bunkerbackup/bunker/internal/plan"
)

func TestMeasure(t *testing.T) {
	ctx, done := app.WithScope(context.Background())
	defer done()
	env := map[string]string{"P": "pw"}
	a := &app.App{Getenv: func(k string) string { return env[k] }}
	main := initRepo(t, a)
	backupFiles(t, ctx, a, main, "job=home")
	absent := filepath.Join(t.TempDir(), "absent")
	src := fmt.Sprintf(`repositories:
  - {name: main, location: %s, password: env:P, site: onsite, medium: disk}
  - {name: away, location: %s, password: env:P, site: offsite, medium: object, immutable: true}
  - {name: locked, location: %s, password: env:NOPE, site: offsite, medium: object}
jobs:
  - {name: home, source: {type: files, paths: [/x]}, schedule: every 1h, repository: main, copies: [{repository: away}, {repository: locked}], rpo: 1h, rto: 10m}
drills:
  - {name: home-drill, job: home, schedule: every 24h}
`, main.Location, absent, main.Location)
	p, err := plan.Parse("p.yaml", []byte(src), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}

	res, err := a.Measure(ctx, app.MeasureRequest{Plan: p})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Status
	if len(st.Repositories) != 3 {
		t.Fatalf("repositories: %+v", st.Repositories)
	}
	m, away, locked := st.Repositories[0], st.Repositories[1], st.Repositories[2]
	if !m.Reachable || m.Snapshots != 1 || m.SizeBytes == 0 || m.Newest["home"].ID == "" {
		t.Errorf("main: %+v, want read with its one snapshot of job home", m)
	}
	if away.Reachable || !strings.Contains(away.Error, "does not exist") {
		t.Errorf("away: %+v, want unreachable: the directory does not exist", away)
	}
	if locked.Reachable || !strings.HasPrefix(locked.Error, "password: ") {
		t.Errorf("locked: %+v, want unreachable for want of its password", locked)
	}
	if j := st.Jobs[0]; j.RPOState != monitor.RPOOK || j.LastSnapshot != m.Newest["home"].ID {
		t.Errorf("job just backed up: %+v, want RPO ok", j)
	}
	if len(st.Drills) != 0 {
		t.Errorf("drills judged unasked: %+v", st.Drills)
	}
	// The copies cannot be read: the 3-2-1 rule is missing.
	if err := res.Violated(); err == nil || app.ExitCode(ctx, err) != app.ExitViolation || !strings.Contains(err.Error(), "objective(s) violated") {
		t.Errorf("violations %v: %v, want an error with exit code %d", st.Violations, err, app.ExitViolation)
	}

	// Two hours on, the RPO is violated; the drill's failure and a slow
	// restore are judged from the history given.
	later := time.Now().Add(2 * time.Hour)
	res, err = a.Measure(ctx, app.MeasureRequest{Plan: p, Now: later, JudgeDrills: true, DrillsKnown: true,
		Drills: map[string]monitor.DrillRun{"home-drill": {Result: "success", Time: later, RestoreSeconds: 3600}}})
	if err != nil {
		t.Fatal(err)
	}
	st = res.Status
	if st.Jobs[0].RPOState != monitor.RPOViolated {
		t.Errorf("two hours on: %+v, want RPO violated", st.Jobs[0])
	}
	if len(st.Drills) != 1 || st.Drills[0].RTOState != monitor.RPOViolated {
		t.Errorf("drills: %+v, want the RTO violated", st.Drills)
	}
	joined := strings.Join(st.Violations, "; ")
	if !strings.Contains(joined, "job home: RPO") || !strings.Contains(joined, "drill home-drill: restore took 3600s") {
		t.Errorf("violations: %s", joined)
	}

	// A secret resolver, when given, resolves the passwords; a failing
	// one leaves the repositories unread, and the run history stands in.
	var asked []string
	secret := func(_ context.Context, ref string) (string, error) {
		asked = append(asked, ref)
		return "", errors.New("vault sealed")
	}
	known := map[string]monitor.SnapshotRef{"home": {ID: "old", Time: time.Now().Add(-10 * time.Minute)}}
	// One repository at a time: the resolver is not safe for concurrent use.
	one := *p
	one.Repositories = p.Repositories[:1]
	res, err = a.Measure(ctx, app.MeasureRequest{Plan: &one, Known: known, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Status.Repositories[0]; r.Reachable || r.Error != "password: vault sealed" || len(asked) != 1 || asked[0] != "env:P" {
		t.Errorf("failing resolver: %+v, asked %v", r, asked)
	}
	if j := res.Status.Jobs[0]; j.LastSnapshot != "old" || j.RPOState != monitor.RPOAtRisk {
		t.Errorf("job of an unread repository: %+v, want the known backup, at risk", j)
	}

	// With no way to open a repository, each is unread with the reason.
	res = app.Unmeasured(app.MeasureRequest{Plan: p, Known: known}, errors.New("--limit-upload: bad rate"))
	for _, r := range res.Status.Repositories {
		if r.Reachable || r.Error != "--limit-upload: bad rate" {
			t.Errorf("unmeasured %s: %+v", r.Name, r)
		}
	}
	if j := res.Status.Jobs[0]; j.LastSnapshot != "old" {
		t.Errorf("unmeasured job: %+v, want the known backup", j)
	}
}
