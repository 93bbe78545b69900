package cli

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/spf13/cobra"
)

// RPO states.
const (
	rpoOK       = "ok"
	rpoAtRisk   = "at_risk"
	rpoViolated = "violated"
	rpoNever    = "never" // no backup yet
	rpoNone     = "no_objective"
)

// atRiskShare is the share of the RPO after which a dataset is at risk.
const atRiskShare = 0.75

// repoView is what status measured in one repository.
type repoView struct {
	Name      string    `json:"name"`
	Site      string    `json:"site,omitempty"`
	Medium    string    `json:"medium,omitempty"`
	Immutable bool      `json:"immutable"`
	Airgapped bool      `json:"airgapped,omitempty"`
	Reachable bool      `json:"reachable"`
	Error     string    `json:"error,omitempty"`
	Snapshots int       `json:"snapshots"`
	Checked   time.Time `json:"checked"`

	newest map[string]*snapshot.Snapshot // job → newest snapshot
}

// jobStatus is one job's state against its RPO.
type jobStatus struct {
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

// datasetStatus is one job's data against the copy rule.
type datasetStatus struct {
	Job       string       `json:"job"`
	Copies    int          `json:"copies"` // the live data plus backups
	Backups   []copyStatus `json:"backups"`
	Media     []string     `json:"media"`
	Offsite   int          `json:"offsite"`
	Immutable int          `json:"immutable"`
	Rule      plan.Policy  `json:"rule"`
	OK        bool         `json:"ok"`
	Missing   []string     `json:"missing,omitempty"`
	Stale     []copyStatus `json:"stale,omitempty"` // copies older than the RPO
}

// copyStatus is one repository's copy of a dataset.
type copyStatus struct {
	Repository string    `json:"repository"`
	Snapshot   string    `json:"snapshot"`
	Time       time.Time `json:"time"`
	AgeSeconds float64   `json:"age_seconds"`
}

// planStatus is everything status reports.
type planStatus struct {
	Time         time.Time       `json:"time"`
	Plan         string          `json:"plan"`
	Jobs         []jobStatus     `json:"jobs"`
	Datasets     []datasetStatus `json:"datasets"`
	Repositories []*repoView     `json:"repositories"`
	Violations   []string        `json:"violations"`
}

func (a *App) statusCommand() *cobra.Command {
	var planFile, at string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every job's RPO state and every dataset's 3-2-1 state, measured",
		Long: `Measure the plan against reality: open every repository, find each job's
newest snapshot (tag job=NAME), and report per job its age against the
RPO (ok, at risk past 75% of it or when its repository cannot be read,
violated past it), and per dataset how many copies exist (the live data
plus each repository holding a backup), on how many media, how many off
site and immutable — with the rule that is missing.

Exit code 4 when any objective is violated or a rule is missing, so it
can gate a monitoring check; 0 when all is well.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.loadPlan(planFile)
			if err != nil {
				return err
			}
			now := time.Now()
			if at != "" {
				if now, err = parseTime(at); err != nil {
					return fmt.Errorf("--at: %w", err)
				}
			}
			st := a.measure(cmd.Context(), p, now)
			if a.g.json {
				a.out.jsonLine(st)
			} else {
				a.printStatus(st)
			}
			if len(st.Violations) > 0 {
				return &exitError{code: ExitViolation, err: fmt.Errorf("%d objective(s) violated: %s", len(st.Violations), strings.Join(st.Violations, "; "))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&planFile, "plan", "", "the plan `file` (default $BUNKER_PLAN)")
	cmd.Flags().StringVar(&at, "at", "", "judge ages as of this `time` (for what-if checks and tests)")
	return cmd
}

// measure reads every repository of the plan (at once) and computes the
// status at now.
func (a *App) measure(ctx context.Context, p *plan.Plan, now time.Time) *planStatus {
	st := &planStatus{Time: now, Plan: p.File, Violations: []string{}}
	views := make([]*repoView, len(p.Repositories))
	var wg sync.WaitGroup
	for i, r := range p.Repositories {
		views[i] = &repoView{Name: r.Name, Site: r.Site, Medium: r.Medium, Immutable: r.Immutable, Airgapped: r.Airgapped, Checked: now,
			newest: map[string]*snapshot.Snapshot{}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.readRepoView(ctx, r, views[i])
		}()
	}
	wg.Wait()
	st.Repositories = views
	byName := map[string]*repoView{}
	for _, v := range views {
		byName[v.Name] = v
	}
	rule := p.Policy.Rule()
	for _, j := range p.Jobs {
		js := jobStatus{Name: j.Name, Source: j.Source.Type, Schedule: j.Schedule, Repository: j.Repository,
			RPOSeconds: j.RPO.Seconds(), NextRun: j.ScheduleOf().Next(now)}
		main := byName[j.Repository]
		if sn := main.newest[j.Name]; sn != nil {
			t := sn.Time
			js.LastSuccess, js.LastSnapshot, js.AgeSeconds = &t, sn.ID.String(), now.Sub(t).Seconds()
		}
		js.RPOState = rpoState(j.RPO, js.LastSuccess, now, main.Reachable)
		if !main.Reachable {
			js.Note = "repository " + main.Name + " cannot be read: " + main.Error
		}
		if js.RPOState == rpoViolated {
			age := "no backup yet"
			if js.LastSuccess != nil {
				age = "last backup " + formatAge(now.Sub(*js.LastSuccess)) + " ago"
			}
			st.Violations = append(st.Violations, fmt.Sprintf("job %s: RPO %s violated (%s)", j.Name, formatAge(j.RPO), age))
		}
		st.Jobs = append(st.Jobs, js)

		ds := datasetStatus{Job: j.Name, Rule: rule, Copies: 1, Media: []string{}}
		repos := append([]string{j.Repository}, func() []string {
			var c []string
			for _, cp := range j.Copies {
				c = append(c, cp.Repository)
			}
			return c
		}()...)
		for _, name := range repos {
			v := byName[name]
			sn := v.newest[j.Name]
			if sn == nil {
				continue
			}
			cs := copyStatus{Repository: name, Snapshot: sn.ID.String(), Time: sn.Time, AgeSeconds: now.Sub(sn.Time).Seconds()}
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
		return rpoNone
	case last == nil && !reachable:
		return rpoAtRisk
	case last == nil:
		return rpoViolated
	}
	age := now.Sub(*last)
	switch {
	case age > rpo:
		return rpoViolated
	case !reachable || float64(age) > atRiskShare*float64(rpo):
		return rpoAtRisk
	}
	return rpoOK
}

// readRepoView opens one repository and finds each job's newest snapshot.
func (a *App) readRepoView(ctx context.Context, r *plan.Repository, v *repoView) {
	pw, err := a.planSecret(ctx, r.Password)
	if err != nil {
		v.Error = "password: " + err.Error()
		return
	}
	rp, err := a.openRepoAt(ctx, r.Location, pw)
	if err != nil {
		v.Error = err.Error()
		return
	}
	all, _, err := snapshot.LoadAll(ctx, rp)
	if err != nil {
		v.Error = err.Error()
		return
	}
	v.Reachable = true
	v.Snapshots = len(all)
	for _, sn := range all {
		for _, t := range sn.Tags {
			job, ok := strings.CutPrefix(t, "job=")
			if !ok {
				continue
			}
			if cur := v.newest[job]; cur == nil || sn.Time.After(cur.Time) {
				v.newest[job] = sn
			}
		}
	}
}

func formatAge(d time.Duration) string {
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

func (a *App) printStatus(st *planStatus) {
	rows := [][]string{{"JOB", "SOURCE", "LAST BACKUP", "AGE", "RPO", "STATE", "NEXT RUN"}}
	for _, j := range st.Jobs {
		last, age, rpo := "never", "-", "-"
		if j.LastSuccess != nil {
			last = j.LastSuccess.Local().Format("2006-01-02 15:04")
			age = formatAge(time.Duration(j.AgeSeconds * float64(time.Second)))
		}
		if j.RPOSeconds > 0 {
			rpo = formatAge(time.Duration(j.RPOSeconds * float64(time.Second)))
		}
		rows = append(rows, []string{j.Name, j.Source, last, age, rpo, strings.ToUpper(strings.ReplaceAll(j.RPOState, "_", " ")), j.NextRun.Local().Format("2006-01-02 15:04")})
	}
	a.printTable(rows)
	a.out.textf("")
	rows = [][]string{{"DATASET", "COPIES", "MEDIA", "OFFSITE", "IMMUTABLE", "3-2-1"}}
	for _, d := range st.Datasets {
		verdict := "ok"
		if !d.OK {
			verdict = "missing " + strings.Join(d.Missing, "; ")
		}
		rows = append(rows, []string{d.Job, fmt.Sprintf("%d/%d", d.Copies, d.Rule.Copies), fmt.Sprintf("%d/%d", len(d.Media), d.Rule.Media),
			fmt.Sprintf("%d/%d", d.Offsite, d.Rule.Offsite), fmt.Sprintf("%d/%d", d.Immutable, d.Rule.Immutable), verdict})
	}
	a.printTable(rows)
	for _, r := range st.Repositories {
		if !r.Reachable {
			a.out.textf("repository %s cannot be read: %s", r.Name, r.Error)
		}
	}
	if len(st.Violations) == 0 {
		a.out.textf("\nall objectives met")
	}
}

// printTable prints aligned columns.
func (a *App) printTable(rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			fmt.Fprintf(&b, "%-*s  ", widths[i], c)
		}
		a.out.textf("%s", strings.TrimRight(b.String(), " "))
	}
}
