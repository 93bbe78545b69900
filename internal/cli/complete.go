package cli

import (
	"context"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/spf13/cobra"
)

// Dynamic shell completion (cobra's hidden __complete command, which the
// scripts of "bunker completion SHELL" call): snapshot IDs for SNAPSHOT
// arguments, job and drill names from the plan. A completion never asks
// for anything and never prints an error: when the repository, its
// password or the plan is not at hand without a question, it offers
// nothing and the shell falls back to its default.

// completeTimeout bounds what one completion may spend opening a
// repository and listing its snapshots: a shell waits for it.
const completeTimeout = 10 * time.Second

// completionSetup does for a completion what PersistentPreRunE does for
// a command (cobra does not run it for __complete), with everything the
// App would print silenced: warnings, errors and JSON lines would land in
// the user's prompt or among the completions. Cobra prints the
// completions on the writer it was given before.
func (a *App) completionSetup() {
	a.Stdout, a.Stderr = io.Discard, io.Discard
	a.g.json, a.g.quiet = false, true
	a.setup()
}

// nonInteractivePassword reports whether the repository password of the
// global flags and variables is available without a prompt.
func (a *App) nonInteractivePassword() bool {
	return a.Getenv("BUNKER_PASSWORD") != "" || a.g.passwordFile != "" || a.g.passwordCommand != ""
}

func completionContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, completeTimeout)
}

// completeSnapshots completes the SNAPSHOT arguments of a command taking
// at most max of them (0: any number) from the repository of -r: short
// IDs, and "latest", described by time, host and paths.
func (a *App) completeSnapshots(max int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if max > 0 && len(args) >= max || strings.Contains(toComplete, ":") {
			return nil, cobra.ShellCompDirectiveDefault
		}
		a.completionSetup()
		if a.g.repo == "" || a.g.repoErr != nil || !a.nonInteractivePassword() {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := completionContext(cmd)
		defer cancel()
		return a.snapshotCompletions(ctx, a.g.repo, "", args, toComplete)
	}
}

// completeFromSnapshots completes copy's SNAPSHOT arguments, which name
// snapshots of the source repository (--from-repo and its password).
func (a *App) completeFromSnapshots(from *fromFlags) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		a.completionSetup()
		ctx, cancel := completionContext(cmd)
		defer cancel()
		src, err := a.fromRepo(ctx, from) // never prompts
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return a.snapshotCompletions(ctx, src.Location, src.Password, args, toComplete)
	}
}

// snapshotCompletions lists the snapshots of the repository at location
// not already among args whose ID starts with toComplete, newest first.
func (a *App) snapshotCompletions(ctx context.Context, location, password string, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	r, err := a.openRepoAt(ctx, location, password)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	all, err := a.loadSnapshots(ctx, r)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	slices.SortFunc(all, func(x, y *snapshot.Snapshot) int { return y.Time.Compare(x.Time) })
	var out []cobra.Completion
	if len(all) > 0 && strings.HasPrefix("latest", toComplete) && !slices.Contains(args, "latest") {
		out = append(out, cobra.CompletionWithDesc("latest", "newest: "+snapshotDescription(all[0])))
	}
	for _, sn := range all {
		id := sn.ShortID()
		if !strings.HasPrefix(id, toComplete) || slices.Contains(args, id) {
			continue
		}
		out = append(out, cobra.CompletionWithDesc(id, snapshotDescription(sn)))
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// snapshotDescription is a snapshot's time, host and paths, as the
// snapshots command lists them.
func snapshotDescription(sn *snapshot.Snapshot) string {
	return sn.Time.Local().Format("2006-01-02 15:04:05") + " " + sn.Hostname + " " + strings.Join(sn.Paths, " ")
}

// completeCat completes cat's object kind, and the ID of "cat snapshot".
func (a *App) completeCat(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	switch {
	case len(args) == 0:
		return append([]cobra.Completion{"snapshot"}, app.CatKinds...), cobra.ShellCompDirectiveNoFileComp
	case len(args) == 1 && args[0] == "snapshot":
		return a.completeSnapshots(1)(cmd, nil, toComplete)
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeJobs completes run's JOB from the plan of --plan (or the
// default lookup), each described by its source and repository.
func (a *App) completeJobs(planFile *string) cobra.CompletionFunc {
	return a.completeFromPlan(planFile, 0, func(p *plan.Plan, add func(name, desc string)) {
		for _, j := range p.Jobs {
			add(j.Name, j.Source.Type+" into "+j.Repository)
		}
	})
}

// completeDrills completes drill's NAME: the plan's drills, then its jobs
// (a job's name runs all its drills).
func (a *App) completeDrills(planFile *string) cobra.CompletionFunc {
	return a.completeFromPlan(planFile, cobra.ShellCompDirectiveKeepOrder, func(p *plan.Plan, add func(name, desc string)) {
		for _, d := range p.Drills {
			add(d.Name, "drill of job "+d.Job)
		}
		for _, j := range p.Jobs {
			add(j.Name, "every drill of this job")
		}
	})
}

// completeFromPlan completes a command's one argument with names list
// finds in the plan of --plan (or the default lookup).
func (a *App) completeFromPlan(planFile *string, extra cobra.ShellCompDirective, list func(p *plan.Plan, add func(name, desc string))) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		a.completionSetup()
		p, err := a.loadPlan(*planFile)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		list(p, func(name, desc string) {
			if strings.HasPrefix(name, toComplete) {
				out = append(out, cobra.CompletionWithDesc(name, desc))
			}
		})
		return out, cobra.ShellCompDirectiveNoFileComp | extra
	}
}
