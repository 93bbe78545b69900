// Package monitor judges a plan against what the repositories hold: each
// job's newest backup against its RPO, each dataset's copies against the
// copy rule (3-2-1 by default). It computes; it does not read
// repositories: the caller measures them (RepoState) and calls Evaluate,
// so the same judgement serves bunker status, the daemon's metrics and
// alerts, and the dashboard.
package monitor

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// RPO states.
const (
	RPOOK       = "ok"
	RPOAtRisk   = "at_risk"
	RPOViolated = "violated"
	RPONone     = "no_objective"
)

// AtRiskShare is the share of the RPO after which a dataset is at risk.
const AtRiskShare = 0.75

// SnapshotRef is a job's newest snapshot in one repository.
type SnapshotRef struct {
	ID   string
	Time time.Time
}

// RepoState is what was measured in one repository.
type RepoState struct {
	Name      string    `json:"name"`
	Site      string    `json:"site,omitempty"`
	Medium    string    `json:"medium,omitempty"`
	Immutable bool      `json:"immutable"`
	Airgapped bool      `json:"airgapped,omitempty"`
	Reachable bool      `json:"reachable"`
	Error     string    `json:"error,omitempty"`
	Snapshots int       `json:"snapshots"`
	SizeBytes int64     `json:"size_bytes,omitempty"`
	Checked   time.Time `json:"checked"`
	// Newest is each job's newest snapshot (tag job=NAME).
	Newest map[string]SnapshotRef `json:"-"`
}

// JobStatus is one job's state against its RPO.
type JobStatus struct {
	Name         string     `json:"name"`
	Source       string     `json:"source"`
	Schedule     string     `json:"schedule"`
	Repository   string     `json:"repository"`
	LastSuccess  *time.Time `json:"last_success,omitempty"`
	LastSnapshot string     `json:"last_snapshot,omitempty"`
	AgeSeconds   float64    `json:"age_seconds,omitempty"`
	RPOSeconds   float64    `json:"rpo_seconds,omitempty"`
	RPOState     string     `json:"rpo_state"`
	NextRun      time.Time  `json:"next_run"`
	Note         string     `json:"note,omitempty"`
}

// DatasetStatus is one job's data against the copy rule.
type DatasetStatus struct {
	Job       string       `json:"job"`
	Copies    int          `json:"copies"` // the live data plus backups
	Backups   []CopyStatus `json:"backups"`
	Media     []string     `json:"media"`
	Offsite   int          `json:"offsite"`
	Immutable int          `json:"immutable"`
	Rule      plan.Policy  `json:"rule"`
	OK        bool         `json:"ok"`
	Missing   []string     `json:"missing,omitempty"`
	Stale     []CopyStatus `json:"stale,omitempty"` // copies older than the RPO
}

// CopyStatus is one repository's copy of a dataset.
type CopyStatus struct {
	Repository string    `json:"repository"`
	Snapshot   string    `json:"snapshot"`
	Time       time.Time `json:"time"`
	AgeSeconds float64   `json:"age_seconds"`
}

// DrillStatus is a drill's last result against the job's RTO.
type DrillStatus struct {
	Name           string     `json:"name"`
	Job            string     `json:"job"`
	LastResult     string     `json:"last_result"` // success, failed, … or "never"
	LastRun        *time.Time `json:"last_run,omitempty"`
	RestoreSeconds float64    `json:"restore_seconds,omitempty"`
	RTOSeconds     float64    `json:"rto_seconds,omitempty"`
	RTOState       string     `json:"rto_state"` // ok, violated, no_objective, unknown
	Error          string     `json:"error,omitempty"`
}

// DrillRun is what the run history says of a drill's last run.
type DrillRun struct {
	Result         string
	Time           time.Time
	RestoreSeconds float64
	Error          string
}

// JudgeDrills adds the drills' state to st: a failed last drill and a
// restore slower than the RTO are violations. runs maps a drill name to
// its last finished run; a missing drill is "never" (not a violation:
// it may not have been due yet). known reports whether the history could
// be read at all.
func JudgeDrills(st *Status, p *plan.Plan, runs map[string]DrillRun, known bool) {
	for _, d := range p.Drills {
		ds := DrillStatus{Name: d.Name, Job: d.Job, LastResult: "never", RTOState: RPONone}
		if j := p.Job(d.Job); j != nil && j.RTO > 0 {
			ds.RTOSeconds = j.RTO.Seconds()
			ds.RTOState = "unknown"
		}
		if !known {
			ds.LastResult = "unknown"
		}
		if r, ok := runs[d.Name]; ok {
			t := r.Time
			ds.LastResult, ds.LastRun, ds.RestoreSeconds, ds.Error = r.Result, &t, r.RestoreSeconds, r.Error
			if ds.RTOSeconds > 0 && r.Result == "success" {
				ds.RTOState = RPOOK
				if r.RestoreSeconds > ds.RTOSeconds {
					ds.RTOState = RPOViolated
					st.Violations = append(st.Violations, fmt.Sprintf("drill %s: restore took %.0fs, RTO %s", d.Name, r.RestoreSeconds, FormatAge(time.Duration(ds.RTOSeconds*float64(time.Second)))))
				}
			}
			if r.Result == "failed" {
				st.Violations = append(st.Violations, fmt.Sprintf("drill %s failed: %s", d.Name, r.Error))
			}
		}
		st.Drills = append(st.Drills, ds)
	}
}

// Status is the whole judgement.
type Status struct {
	Time         time.Time       `json:"time"`
	Plan         string          `json:"plan"`
	Jobs         []JobStatus     `json:"jobs"`
	Datasets     []DatasetStatus `json:"datasets"`
	Drills       []DrillStatus   `json:"drills"`
	Repositories []*RepoState    `json:"repositories"`
	Violations   []string        `json:"violations"`
}

// Evaluate judges the plan at now from the measured repositories (one
// per plan repository, by name). known holds each job's last backup as
// known otherwise (the daemon's run history): it stands in when the job's
// repository cannot be read, so an outage still turns into a violation
// once the RPO has passed.
func Evaluate(p *plan.Plan, repos []*RepoState, now time.Time, known map[string]SnapshotRef) *Status {
	st := &Status{Time: now, Plan: p.File, Violations: []string{}, Repositories: repos, Drills: []DrillStatus{}}
	byName := map[string]*RepoState{}
	for _, v := range repos {
		byName[v.Name] = v
	}
	rule := p.Policy.Rule()
	for _, j := range p.Jobs {
		js := JobStatus{Name: j.Name, Source: j.Source.Type, Schedule: j.Schedule, Repository: j.Repository,
			RPOSeconds: j.RPO.Seconds()}
		if s := j.ScheduleOf(); s != nil {
			js.NextRun = s.Next(now)
		}
		main := byName[j.Repository]
		if main == nil {
			main = &RepoState{Name: j.Repository, Error: "not measured"}
		}
		sn, ok := main.Newest[j.Name]
		if !ok && !main.Reachable {
			sn, ok = known[j.Name]
		}
		if ok {
			t := sn.Time
			js.LastSuccess, js.LastSnapshot, js.AgeSeconds = &t, sn.ID, now.Sub(t).Seconds()
		}
		js.RPOState = rpoState(j.RPO, js.LastSuccess, now, main.Reachable)
		if !main.Reachable {
			js.Note = "repository " + main.Name + " cannot be read: " + main.Error
		}
		if js.RPOState == RPOViolated {
			age := "no backup yet"
			if js.LastSuccess != nil {
				age = "last backup " + FormatAge(now.Sub(*js.LastSuccess)) + " ago"
			}
			st.Violations = append(st.Violations, fmt.Sprintf("job %s: RPO %s violated (%s)", j.Name, FormatAge(j.RPO), age))
		}
		st.Jobs = append(st.Jobs, js)

		ds := DatasetStatus{Job: j.Name, Rule: rule, Copies: 1, Media: []string{}}
		names := []string{j.Repository}
		for _, c := range j.Copies {
			names = append(names, c.Repository)
		}
		for _, name := range names {
			v := byName[name]
			if v == nil {
				continue
			}
			sn, ok := v.Newest[j.Name]
			if !ok {
				continue
			}
			cs := CopyStatus{Repository: name, Snapshot: sn.ID, Time: sn.Time, AgeSeconds: now.Sub(sn.Time).Seconds()}
			ds.Backups = append(ds.Backups, cs)
			if j.RPO > 0 && now.Sub(sn.Time) > j.RPO {
				ds.Stale = append(ds.Stale, cs)
			}
			ds.Copies++
			r := p.Repository(name)
			if r.Medium != "" && !slices.Contains(ds.Media, r.Medium) {
				ds.Media = append(ds.Media, r.Medium)
			}
			if r.Site == "offsite" {
				ds.Offsite++
			}
			if r.Immutable {
				ds.Immutable++
			}
		}
		sort.Strings(ds.Media)
		if ds.Copies < rule.Copies {
			ds.Missing = append(ds.Missing, fmt.Sprintf("%d copies: have %d (the live data and %d backup(s))", rule.Copies, ds.Copies, ds.Copies-1))
		}
		if len(ds.Media) < rule.Media {
			have := "none recorded"
			if len(ds.Media) > 0 {
				have = "only " + strings.Join(ds.Media, ", ")
			}
			ds.Missing = append(ds.Missing, fmt.Sprintf("%d media: %s", rule.Media, have))
		}
		if ds.Offsite < rule.Offsite {
			ds.Missing = append(ds.Missing, fmt.Sprintf("%d offsite: have %d", rule.Offsite, ds.Offsite))
		}
		if ds.Immutable < rule.Immutable {
			ds.Missing = append(ds.Missing, fmt.Sprintf("%d immutable: have %d", rule.Immutable, ds.Immutable))
		}
		ds.OK = len(ds.Missing) == 0
		if !ds.OK {
			st.Violations = append(st.Violations, fmt.Sprintf("dataset %s: %s", j.Name, strings.Join(ds.Missing, ", ")))
		}
		st.Datasets = append(st.Datasets, ds)
	}
	return st
}

func rpoState(rpo time.Duration, last *time.Time, now time.Time, reachable bool) string {
	switch {
	case rpo <= 0:
		return RPONone
	case last == nil && !reachable:
		return RPOAtRisk
	case last == nil:
		return RPOViolated
	}
	age := now.Sub(*last)
	switch {
	case age > rpo:
		return RPOViolated
	case !reachable || float64(age) > AtRiskShare*float64(rpo):
		return RPOAtRisk
	}
	return RPOOK
}

// FormatAge prints a duration briefly: 45s, 12m, 3.5h, 2.1d.
func FormatAge(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1fd", d.Hours()/24)
	case d >= time.Hour:
		return fmt.Sprintf("%.1fh", d.Hours())
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}
