package app

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/app/streamtree"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/restorer"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/source/mysql"
	"github.com/bunkerbackup/bunker/internal/source/postgres"
)

// DrillRequest runs one restore drill of a plan.
type DrillRequest struct {
	Plan  *plan.Plan
	Drill *plan.Drill
	// Log receives every step's output: the run log.
	Log io.Writer
}

// DrillResult is what a drill restored and how long the restore took.
type DrillResult struct {
	Snapshot       string
	RestoreSeconds float64
}

// Drill restores a job's snapshot (the newest, or a random one when the
// drill picks so) where nothing real is touched — files into a temporary
// directory, verified against the snapshot; a logical database backup
// into a scratch server — then runs the drill's checks (commands in the
// restored tree, SQL against the scratch server). The result says the
// restore time even when a check fails.
func (a *App) Drill(ctx context.Context, req DrillRequest) (*DrillResult, error) {
	p, d := req.Plan, req.Drill
	out := &DrillResult{}
	j := p.Job(d.Job)
	if j == nil {
		return out, fmt.Errorf("drill %s: no job %q", d.Name, d.Job)
	}
	switch {
	case (j.Source.Type == "postgres" || j.Source.Type == "mysql") && !j.Source.Physical:
	case j.Source.Type == "files" || j.Source.Type == "stdin":
	default:
		kind := j.Source.Type
		if j.Source.Physical {
			kind = "physical " + kind
		}
		return out, fmt.Errorf("drill %s: drills of %s jobs are not supported yet (files, stdin and logical postgres and mysql jobs are)", d.Name, kind)
	}
	r, sn, err := a.drillSnapshot(ctx, p, d, j)
	if err != nil {
		return out, err
	}
	out.Snapshot = sn.ID.String()
	switch j.Source.Type {
	case "postgres":
		return out, a.drillPostgres(ctx, r, sn, d, out, req.Log)
	case "mysql":
		return out, a.drillMySQL(ctx, r, sn, d, out, req.Log)
	}
	return out, a.drillFiles(ctx, r, sn, j, d, out, req.Log)
}

// drillSnapshot opens the job's repository and picks the snapshot to
// restore.
func (a *App) drillSnapshot(ctx context.Context, p *plan.Plan, d *plan.Drill, j *plan.Job) (*repository.Repository, *snapshot.Snapshot, error) {
	repo := p.Repository(j.Repository)
	planRepo, err := a.PlanRepo(ctx, p, repo.Name)
	if err != nil {
		return nil, nil, err
	}
	r, err := a.Open(ctx, planRepo)
	if err != nil {
		return nil, nil, fmt.Errorf("drill %s: open %s: %w", d.Name, repo.Name, err)
	}
	if err := r.LoadIndex(ctx, false); err != nil {
		return nil, nil, fmt.Errorf("drill %s: load index: %w", d.Name, err)
	}
	all, _, err := snapshot.LoadAll(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	var mine []*snapshot.Snapshot
	for _, sn := range all {
		if slices.Contains(sn.Tags, JobTag(j.Name)) {
			mine = append(mine, sn)
		}
	}
	if len(mine) == 0 {
		return nil, nil, fmt.Errorf("drill %s: job %s has no snapshot in %s to restore", d.Name, j.Name, repo.Name)
	}
	sn := mine[len(mine)-1]
	if d.Pick == "random" {
		sn = mine[rand.IntN(len(mine))]
	}
	return r, sn, nil
}

// drillFiles restores a files or stdin snapshot into a sandbox, verifying
// every file, and runs the drill's command checks in it.
func (a *App) drillFiles(ctx context.Context, r *repository.Repository, sn *snapshot.Snapshot, j *plan.Job, d *plan.Drill, out *DrillResult, log io.Writer) error {
	tmp, err := os.MkdirTemp("", "bunker-drill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Fprintf(log, "drill %s: restoring snapshot %s of %s into a sandbox\n", d.Name, sn.ShortID(), j.Name)
	start := time.Now()
	verify := d.Validate.Hashes == nil || *d.Validate.Hashes
	var failed []string
	res := restorer.New(r, restorer.Options{Verify: verify, NoOwner: true, OnError: func(p string, err error) error {
		failed = append(failed, p+": "+err.Error())
		return nil
	}})
	if err := res.Restore(ctx, sn.Tree, "/", tmp); err != nil {
		return fmt.Errorf("drill %s: restore of %s failed: %w", d.Name, sn.ShortID(), err)
	}
	out.RestoreSeconds = time.Since(start).Seconds()
	if len(failed) > 0 {
		return fmt.Errorf("drill %s: %d file(s) did not restore: %s", d.Name, len(failed), strings.Join(failed[:min(len(failed), 5)], "; "))
	}
	if bad := res.VerifyFailures(); len(bad) > 0 {
		return fmt.Errorf("drill %s: %d restored file(s) differ from the snapshot: %s", d.Name, len(bad), strings.Join(bad[:min(len(bad), 5)], ", "))
	}
	for _, c := range d.Validate.Checks {
		if c.Command == "" {
			return fmt.Errorf("drill %s: SQL checks need a database drill, which is not supported yet", d.Name)
		}
		if err := a.drillCheck(ctx, c, tmp, log); err != nil {
			return fmt.Errorf("drill %s: %w", d.Name, err)
		}
	}
	fmt.Fprintf(log, "drill %s: restored and verified in %.2fs\n", d.Name, out.RestoreSeconds)
	return nil
}

// drillPostgres restores a logical PostgreSQL backup into a scratch
// cluster, runs the drill's SQL checks and stops the cluster.
func (a *App) drillPostgres(ctx context.Context, r *repository.Repository, sn *snapshot.Snapshot, d *plan.Drill, out *DrillResult, log io.Writer) error {
	fmt.Fprintf(log, "drill %s: starting a scratch PostgreSQL server\n", d.Name)
	sc, err := postgres.StartScratch(ctx, "")
	if err != nil {
		return fmt.Errorf("drill %s: %w", d.Name, err)
	}
	defer sc.Stop()
	fmt.Fprintf(log, "drill %s: restoring snapshot %s\n", d.Name, sn.ShortID())
	start := time.Now()
	var failed []string
	err = sc.Client.RestoreLogical(ctx, streamtree.NewReader(r, sn.Tree), postgres.RestoreOptions{Jobs: 2, Report: func(name string, err error) {
		if err != nil {
			failed = append(failed, name+": "+err.Error())
		}
	}})
	out.RestoreSeconds = time.Since(start).Seconds()
	if err != nil {
		return fmt.Errorf("drill %s: restore of %s failed: %v %s", d.Name, sn.ShortID(), err, strings.Join(failed, "; "))
	}
	return sqlChecks(ctx, d, out, log, "postgres", sc.Query)
}

// drillMySQL restores a logical MySQL/MariaDB backup into a scratch
// server, runs the drill's SQL checks and stops the server.
func (a *App) drillMySQL(ctx context.Context, r *repository.Repository, sn *snapshot.Snapshot, d *plan.Drill, out *DrillResult, log io.Writer) error {
	fmt.Fprintf(log, "drill %s: starting a scratch MariaDB/MySQL server\n", d.Name)
	sc, err := mysql.StartScratch(ctx, "")
	if err != nil {
		return fmt.Errorf("drill %s: %w", d.Name, err)
	}
	defer sc.Stop()
	fmt.Fprintf(log, "drill %s: restoring snapshot %s\n", d.Name, sn.ShortID())
	start := time.Now()
	_, err = sc.Source.Restore(ctx, streamtree.NewReader(r, sn.Tree), mysql.RestoreOptions{Jobs: 2,
		Progress: func(msg string) { fmt.Fprintln(log, msg) }})
	out.RestoreSeconds = time.Since(start).Seconds()
	if err != nil {
		return fmt.Errorf("drill %s: restore of %s failed: %w", d.Name, sn.ShortID(), err)
	}
	return sqlChecks(ctx, d, out, log, "", sc.Query)
}

// sqlChecks runs a database drill's checks with query.
func sqlChecks(ctx context.Context, d *plan.Drill, out *DrillResult, log io.Writer, defaultDB string, query func(ctx context.Context, db, sql string) (string, error)) error {
	for _, c := range d.Validate.Checks {
		if c.SQL == "" {
			return fmt.Errorf("drill %s: a database drill takes sql checks", d.Name)
		}
		db := c.Database
		if db == "" {
			db = defaultDB
		}
		got, err := query(ctx, db, c.SQL)
		fmt.Fprintf(log, "%s> %s\n%s\n", db, c.SQL, got)
		if err != nil {
			return fmt.Errorf("drill %s: check %q: %w", d.Name, c.SQL, err)
		}
		if got != strings.TrimSpace(c.Expect) {
			return fmt.Errorf("drill %s: check %q returned %q, want %q", d.Name, c.SQL, got, c.Expect)
		}
	}
	fmt.Fprintf(log, "drill %s: restored and checked in %.2fs\n", d.Name, out.RestoreSeconds)
	return nil
}

// drillCheck runs a check command in the restored tree, with a hook's
// environment; its trimmed output must equal Expect.
func (a *App) drillCheck(ctx context.Context, c *plan.Check, dir string, log io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := a.HookCommand(ctx, c.Command, a.HookEnv(c.Env, "BUNKER_RESTORE_DIR="+dir))
	cmd.Dir = dir
	cmd.Stderr = LockedWriter(log)
	fmt.Fprintf(log, "$ %s\n", c.Command)
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("check %q: %w", c.Command, err)
	}
	if got := strings.TrimSpace(string(b)); got != strings.TrimSpace(c.Expect) {
		return fmt.Errorf("check %q printed %q, want %q", c.Command, got, c.Expect)
	}
	return nil
}
