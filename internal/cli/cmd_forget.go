package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/app"
	"github.com/bunkerbackup/bunker/internal/engine/maintenance"
	"github.com/bunkerbackup/bunker/internal/engine/repository"
	"github.com/bunkerbackup/bunker/internal/engine/snapshot"
	"github.com/bunkerbackup/bunker/internal/timespec"
	"github.com/bunkerbackup/bunker/internal/units"
	"github.com/spf13/cobra"
)

type pruneFlags struct {
	maxUnused    string
	safetyWindow time.Duration
}

func (p *pruneFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.maxUnused, "max-unused", "5%", "tolerated unused space in packs before repacking (percent, or 'unlimited')")
	cmd.Flags().DurationVar(&p.safetyWindow, "safety-window", 0, "minimum age of a deletion plan before packs are deleted")
}

func (p *pruneFlags) options(dryRun bool) (maintenance.Options, error) {
	o := maintenance.Options{DryRun: dryRun, SafetyWindow: p.safetyWindow}
	switch s := strings.TrimSpace(p.maxUnused); {
	case s == "unlimited":
		o.MaxUnused = -1
	default:
		v, ok := units.ParsePercent(s)
		if !ok {
			return o, fmt.Errorf("--max-unused %q: want a percentage from 0%% to 100%%, or 'unlimited'", s)
		}
		o.MaxUnused = v
	}
	return o, nil
}

// parseWithin parses --keep-within: a retention duration of the timespec
// grammar (restic's 1y5m7d2h means what it means in restic; a lone m is
// refused). A duration longer than a time.Duration holds (about 292
// years) is clamped to the longest one, never wrapped: as --keep-within
// it keeps every snapshot (snapshot.Policy compares ages with saturating
// arithmetic).
func parseWithin(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := timespec.ParseRetention(s)
	if errors.Is(err, timespec.ErrTooLong) {
		return timespec.Longest, nil
	}
	return d, err
}

// forgetFlags are the flags of forget: the policy, what it applies to,
// and whether prune follows.
type forgetFlags struct {
	ff                            snapshotFilterFlags
	pol                           snapshot.Policy
	within, groupBy               string
	withinBy                      [5]string // --keep-within-hourly … yearly
	dryRun, prune, allowRemoveAll bool
	keepLogs                      bool
	pf                            pruneFlags
}

var keepPeriods = []string{"hourly", "daily", "weekly", "monthly", "yearly"}

func (f *forgetFlags) add(cmd *cobra.Command) {
	addFilterFlags(cmd, &f.ff)
	fl := cmd.Flags()
	for _, k := range []struct {
		n     *int
		name  string
		short string
		what  string
	}{{&f.pol.Last, "last", "l", ""}, {&f.pol.Hourly, "hourly", "H", " hourly"}, {&f.pol.Daily, "daily", "d", " daily"},
		{&f.pol.Weekly, "weekly", "w", " weekly"}, {&f.pol.Monthly, "monthly", "m", " monthly"}, {&f.pol.Yearly, "yearly", "y", " yearly"}} {
		fl.IntVarP(k.n, "keep-"+k.name, k.short, 0, "keep the last `n`"+k.what+" snapshots (-1: all)")
		flagRange(fl, -1, unbounded, "keep-"+k.name)
	}
	fl.StringVar(&f.within, "keep-within", "", "keep snapshots within `duration` of the newest (e.g. 36h, 7d, 2w, 6mo, 1y; restic's 1y5m7d2h works, a lone m is refused: write mo or min)")
	for i, period := range keepPeriods {
		fl.StringVar(&f.withinBy[i], "keep-within-"+period, "", "keep the newest "+period+" snapshot of each period within `duration` of the newest")
	}
	fl.StringArrayVar(&f.pol.Tags, "keep-tag", nil, "keep snapshots with this `tag`")
	fl.StringVarP(&f.groupBy, "group-by", "g", "host,paths", "group snapshots by `fields` before applying the policy")
	fl.BoolVarP(&f.dryRun, "dry-run", "n", false, "only show what would be removed")
	fl.BoolVar(&f.prune, "prune", false, "prune unreferenced data afterwards")
	fl.BoolVar(&f.allowRemoveAll, "unsafe-allow-remove-all", false, "let the policy remove every snapshot of a group")
	fl.BoolVar(&f.keepLogs, "keep-log-archives", false, "leave log archives (WAL, binlogs, oplog) to their expire commands instead of forgetting those no kept backup needs")
	f.pf.add(cmd)
}

// parseWithins sets the policy's --keep-within durations.
func (f *forgetFlags) parseWithins() error {
	p := &f.pol
	for i, d := range []*time.Duration{&p.Within, &p.WithinHourly, &p.WithinDaily, &p.WithinWeekly, &p.WithinMonthly, &p.WithinYearly} {
		flag, s := "", f.within
		if i > 0 {
			flag, s = "-"+keepPeriods[i-1], f.withinBy[i-1]
		}
		v, err := parseWithin(s)
		if err != nil {
			return fmt.Errorf("--keep-within%s: %w", flag, err)
		}
		*d = v
	}
	return nil
}

func (a *App) forgetCommand() *cobra.Command {
	var f forgetFlags
	cmd := &cobra.Command{
		Use:               "forget [flags] [SNAPSHOT...]",
		Short:             "Remove snapshots by ID or by a retention policy",
		ValidArgsFunction: a.completeSnapshots(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.forget(cmd.Context(), &f, args)
		},
	}
	f.add(cmd)
	return cmd
}

// forget runs forget with the flags f on the named snapshots (or the
// policy), then prune when asked.
func (a *App) forget(ctx context.Context, f *forgetFlags, args []string) error {
	if err := f.parseWithins(); err != nil {
		return err
	}
	if len(args) == 0 && f.pol.Empty() {
		return errors.New("nothing to do: name snapshots or give a policy (--keep-last, --keep-daily, ...)")
	}
	popts, err := f.pf.options(f.dryRun)
	if err != nil {
		return err
	}
	c, r, err := a.coreOpen(ctx)
	if err != nil {
		return err
	}
	res, err := c.Forget(ctx, app.ForgetRequest{Opened: r, Snapshots: args, Policy: f.pol, Filter: f.ff.filter(), GroupBy: f.groupBy,
		DryRun: f.dryRun, AllowRemoveAll: f.allowRemoveAll, KeepLogArchives: f.keepLogs})
	if res == nil {
		return err
	}
	if len(args) == 0 {
		a.printForgetGroups(res, f.pol, f.dryRun)
	}
	for _, l := range res.Locked {
		a.out.warnf("snapshot %s is under Object Lock until %s: a forget after that removes it", l.Snapshot.ShortID(), l.Until.Local().Format("2006-01-02 15:04"))
	}
	if err != nil {
		return err
	}
	if f.dryRun {
		a.out.textf("dry run: would remove %s", plural(int64(len(res.Remove)), "snapshot"))
	} else {
		if a.g.json {
			a.out.jsonLine(map[string]any{"message_type": "forget_result", "removed": res.Removed, "locked": len(res.Locked)})
		}
		a.out.textf("removed %s", plural(int64(res.Removed), "snapshot"))
	}
	if f.prune && (len(res.Remove) > 0 || f.dryRun) {
		return a.doPrune(ctx, r, popts)
	}
	return nil
}

func (a *App) pruneCommand() *cobra.Command {
	var dryRun bool
	var pf pruneFlags
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete data no snapshot references",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			popts, err := pf.options(dryRun)
			if err != nil {
				return err
			}
			r, err := a.openRepo(ctx)
			if err != nil {
				return err
			}
			return a.doPrune(ctx, r, popts)
		},
	}
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "only show what would be done")
	pf.add(cmd)
	return cmd
}

// printForgetGroups prints the policy's decisions: a table per group, or
// one JSON line.
func (a *App) printForgetGroups(res *app.ForgetResult, pol snapshot.Policy, dryRun bool) {
	if a.g.json {
		logs := []map[string]any{}
		for _, e := range res.ExpiredLogs {
			logs = append(logs, map[string]any{"id": e.Snapshot.ID.String(), "archive": e.Archive, "why": e.Why})
		}
		a.out.jsonLine(map[string]any{"message_type": "forget", "groups": res.Groups, "dry_run": dryRun, "expired_logs": logs})
		return
	}
	if a.g.quiet {
		return
	}
	for _, g := range res.Groups {
		var rows [][]string
		for _, d := range g.Decisions {
			verdict := "remove"
			if d.Keep {
				verdict = "keep (" + strings.Join(d.Reasons, ", ") + ")"
			}
			rows = append(rows, []string{d.Snapshot.ShortID(), d.Snapshot.Time.Local().Format("2006-01-02 15:04:05"), verdict})
		}
		k := g.Key
		fmt.Fprintf(a.Stdout, "host %q paths %v tags %v — %s:\n", k.Hostname, k.Paths, k.Tags, pol)
		table(a.Stdout, []string{"ID", "Time", "Decision"}, rows)
		fmt.Fprintln(a.Stdout)
	}
	for _, e := range res.ExpiredLogs {
		fmt.Fprintf(a.Stdout, "%s snapshot %s %s: remove (no kept backup needs it)\n", e.Archive, e.Snapshot.ShortID(), e.Why)
	}
}

// doPrune prunes r and prints what it did.
func (a *App) doPrune(ctx context.Context, r *repository.Repository, opts maintenance.Options) error {
	c, err := a.core()
	if err != nil {
		return err
	}
	out, err := c.Prune(ctx, app.PruneRequest{Opened: r, Options: opts})
	if err != nil {
		return err
	}
	res := &out.Result
	if a.g.json {
		a.out.jsonLine(map[string]any{"message_type": "prune", "result": res, "duration_seconds": out.Duration.Seconds()})
		return nil
	}
	if opts.DryRun {
		a.out.textf("dry run: would plan %d of %d packs for deletion (%s), %d of them to repack", res.PacksPlanned, res.PacksTotal, formatBytes(res.BytesPlanned), res.PacksRepacked)
		return nil
	}
	a.out.textf("prune: %d snapshots keep data; planned %d packs (%s), repacked %d blobs", res.Snapshots, res.PacksPlanned, formatBytes(res.BytesPlanned), res.BlobsRepacked)
	a.out.textf("prune: deleted %d packs (%s)%s", res.PacksDeleted, formatBytes(res.BytesDeleted), map[bool]string{true: ", index compacted", false: ""}[res.IndexCompacted])
	if res.LockedPacks > 0 {
		a.out.textf("prune: %d unused packs (%s) are under Object Lock; a prune after %s frees them", res.LockedPacks, formatBytes(res.LockedBytes), res.LockedUntil.Local().Format("2006-01-02 15:04"))
	}
	if res.RetentionExtended > 0 {
		a.out.textf("prune: extended the Object Lock retention of %d objects still needed", res.RetentionExtended)
	}
	if res.PlansWaiting > 0 {
		a.out.textf("prune: %d deletion plans wait for %d running backups; the next prune after they finish deletes them", res.PlansWaiting, len(res.WaitingSessions))
	}
	if res.PacksKept > 0 {
		a.out.textf("prune: kept %d planned packs that hold data a snapshot needs", res.PacksKept)
	}
	if res.RepackFailed > 0 {
		a.out.warnf("prune: left %d packs alone: a blob a snapshot needs could not be read back from them; run 'bunker check --read-data'", res.RepackFailed)
	}
	if n := len(res.UnreadablePlans); n > 0 {
		a.out.warnf("prune: ignored %d unreadable maintenance plans (damaged or planted); 'bunker repair maint' removes them", n)
	}
	return nil
}
