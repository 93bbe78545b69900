package monitor

import (
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/plan"
)

func TestRPOState(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { x := now.Add(-d); return &x }
	for _, tc := range []struct {
		rpo       time.Duration
		last      *time.Time
		reachable bool
		want      string
	}{
		{0, ago(time.Hour), true, RPONone},
		{time.Hour, nil, true, RPOViolated},
		{time.Hour, nil, false, RPOAtRisk},
		{time.Hour, ago(10 * time.Minute), true, RPOOK},
		{time.Hour, ago(10 * time.Minute), false, RPOAtRisk},
		{time.Hour, ago(50 * time.Minute), true, RPOAtRisk},
		{time.Hour, ago(61 * time.Minute), true, RPOViolated},
		{time.Hour, ago(61 * time.Minute), false, RPOViolated},
	} {
		if got := rpoState(tc.rpo, tc.last, now, tc.reachable); got != tc.want {
			t.Errorf("rpo %v last %v reachable %v: %s, want %s", tc.rpo, tc.last, tc.reachable, got, tc.want)
		}
	}
}

func TestEvaluatePolicy(t *testing.T) {
	src := `repositories:
  - {name: a, location: /a, password: env:P, site: onsite, medium: disk}
  - {name: b, location: /b, password: env:P, site: offsite, medium: object, immutable: true}
  - {name: c, location: /c, password: env:P, site: onsite, medium: disk}
jobs:
  - {name: j, source: {type: files, paths: [/x]}, schedule: every 1h, repository: a, copies: [{repository: b}, {repository: c}], rpo: 1h}
policy: {copies: 4, immutable: 2}
`
	p, err := plan.Parse("p.yaml", []byte(src), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	snap := map[string]SnapshotRef{"j": {ID: "1", Time: now.Add(-2 * time.Hour)}}
	repos := []*RepoState{{Name: "a", Reachable: true, Newest: snap}, {Name: "b", Reachable: true, Newest: snap}, {Name: "c", Reachable: false, Error: "gone"}}
	st := Evaluate(p, repos, now, nil)
	d := st.Datasets[0]
	if d.Copies != 3 || d.Offsite != 1 || d.Immutable != 1 || len(d.Stale) != 2 ||
		strings.Join(d.Missing, "|") != "4 copies: have 3 (the live data and 2 backup(s))|2 immutable: have 1" {
		t.Fatalf("%+v", d)
	}
	if st.Jobs[0].RPOState != RPOViolated || len(st.Violations) != 2 {
		t.Fatalf("%+v %v", st.Jobs[0], st.Violations)
	}
}

func TestEvaluateUnreachableUsesKnown(t *testing.T) {
	src := `repositories:
  - {name: a, location: /a, password: env:P}
jobs:
  - {name: j, source: {type: files, paths: [/x]}, schedule: every 1h, repository: a, rpo: 1h}
`
	p, err := plan.Parse("p.yaml", []byte(src), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	down := []*RepoState{{Name: "a", Error: "connection refused"}}
	if st := Evaluate(p, down, now, nil); st.Jobs[0].RPOState != RPOAtRisk {
		t.Errorf("unknown last backup, repository down: %s", st.Jobs[0].RPOState)
	}
	known := map[string]SnapshotRef{"j": {ID: "x", Time: now.Add(-30 * time.Minute)}}
	if st := Evaluate(p, down, now, known); st.Jobs[0].RPOState != RPOAtRisk {
		t.Errorf("recent backup, repository down: %s", st.Jobs[0].RPOState)
	}
	if st := Evaluate(p, down, now.Add(time.Hour), known); st.Jobs[0].RPOState != RPOViolated {
		t.Errorf("RPO passed, repository down: %s", st.Jobs[0].RPOState)
	}
}
