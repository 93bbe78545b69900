package operator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

// slots says when a Schedule fires.
type slots interface {
	// Next returns the first slot strictly after t, or the zero time when
	// there is none within five years.
	Next(t time.Time) time.Time
}

// minEvery is the shortest "@every" interval.
const minEvery = time.Minute

// parseSchedule parses spec.schedule: a five-field cron expression or a
// descriptor (@daily…), in UTC unless it starts with CRON_TZ=Zone or
// TZ=Zone, or "@every DURATION" (slots at multiples of DURATION since the
// Unix epoch, so that they do not depend on when the Schedule was made).
func parseSchedule(spec string) (s slots, err error) {
	rest := spec
	tz := ""
	if strings.HasPrefix(rest, "CRON_TZ=") || strings.HasPrefix(rest, "TZ=") {
		var ok bool
		tz, rest, ok = strings.Cut(rest, " ")
		if !ok {
			return nil, fmt.Errorf("schedule %q: nothing after the time zone", spec)
		}
	}
	if d, ok := strings.CutPrefix(rest, "@every "); ok {
		iv, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %v", spec, err)
		}
		if iv < minEvery {
			return nil, fmt.Errorf("schedule %q: at most once a minute", spec)
		}
		if iv%time.Second != 0 {
			// Slots name Backups to the second.
			return nil, fmt.Errorf("schedule %q: not a whole number of seconds", spec)
		}
		return every(iv), nil
	}
	if strings.HasPrefix(rest, "@every") {
		return nil, fmt.Errorf("schedule %q: want \"@every DURATION\"", spec)
	}
	if tz == "" {
		tz = "CRON_TZ=UTC"
	}
	// robfig/cron has panicked on odd input before: a schedule is user
	// input, and must not take the operator down.
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("schedule %q: %v", spec, p)
		}
	}()
	c, err := cron.ParseStandard(tz + " " + rest)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %v", spec, err)
	}
	return c, nil
}

// every fires at multiples of itself since the Unix epoch.
type every time.Duration

func (e every) Next(t time.Time) time.Time {
	return e.floor(t).Add(time.Duration(e))
}

// floor returns the last slot at or before t.
func (e every) floor(t time.Time) time.Time {
	d := time.Duration(e)
	since := t.Sub(time.Unix(0, 0))
	n := since / d
	if since < 0 && since%d != 0 {
		n--
	}
	return time.Unix(0, 0).Add(n * d).In(t.Location())
}

// maxCatchUpSteps bounds the walk from the last slot to now (about two
// years of a once-a-minute schedule).
const maxCatchUpSteps = 1 << 20

// latestSlot returns the last slot at or before now, given first, a slot
// at or before now.
func latestSlot(s slots, first, now time.Time) time.Time {
	if e, ok := s.(every); ok {
		return e.floor(now)
	}
	slot := first
	for range maxCatchUpSteps {
		n := s.Next(slot)
		if n.IsZero() || n.After(now) {
			break
		}
		slot = n
	}
	return slot
}

// backupName is the name of the Backup of slot: <schedule>-<yyyymmddhhmmss>.
func backupName(schedule string, slot time.Time) string {
	return schedule + "-" + slot.UTC().Format("20060102150405")
}

type scheduleController struct{ *Operator }

func (o *Operator) setupSchedules() error {
	return builder.ControllerManagedBy(o.mgr).Named("schedule").
		For(&v1alpha1.Schedule{}).
		Complete(&scheduleController{o})
}

// Reconcile creates the Backup of the latest slot that is due and has
// none, prunes old Backups, and sleeps until the next slot.
func (r *scheduleController) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var s v1alpha1.Schedule
	if err := r.client.Get(ctx, req.NamespacedName, &s); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	before := s.Status.DeepCopy()
	now := r.opts.Clock.Now()
	sl, err := parseSchedule(s.Spec.Schedule)
	if err != nil {
		return reconcile.Result{}, r.setStatus(ctx, &s, before, metav1.ConditionFalse, "InvalidSchedule", err.Error(), nil)
	}
	// The Backup of a slot, but for its name: checked now, so that a
	// template every Backup would fail with (the tenancy rule, a spec the
	// CRD refuses) fails the Schedule instead, before any is created.
	b := &v1alpha1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Labels: map[string]string{v1alpha1.LabelSchedule: s.Name}},
		Spec:       *s.Spec.Template.DeepCopy(),
	}
	if err := r.opts.checkSchedule(&s, b); err != nil {
		return reconcile.Result{}, r.setStatus(ctx, &s, before, metav1.ConditionFalse, "InvalidSpec", err.Error()+"; no Backups are created", nil)
	}
	if s.Spec.Suspend {
		return reconcile.Result{}, r.setStatus(ctx, &s, before, metav1.ConditionTrue, "Suspended", "suspended: no Backups are created", nil)
	}
	anchor := s.CreationTimestamp.Time
	if s.Status.LastScheduleTime != nil {
		anchor = s.Status.LastScheduleTime.Time
	}
	next := sl.Next(anchor)
	if next.IsZero() {
		return reconcile.Result{}, r.setStatus(ctx, &s, before, metav1.ConditionFalse, "InvalidSchedule",
			fmt.Sprintf("schedule %q has no slot after %s", s.Spec.Schedule, anchor.UTC().Format(time.RFC3339)), nil)
	}
	if next.After(now) {
		return r.sleep(ctx, &s, before, next, now)
	}

	// Due: one Backup for the latest slot, however many were missed.
	slot := latestSlot(sl, next, now).Truncate(time.Second)
	name := backupName(s.Name, slot)
	b.Name = name
	if err := controllerutil.SetControllerReference(&s, b, r.mgr.GetScheme()); err != nil {
		return reconcile.Result{}, err
	}
	switch err := r.client.Create(ctx, b); {
	case err == nil:
		skipped := ""
		if !next.Equal(slot) {
			skipped = fmt.Sprintf(" (catching up: slots since %s were missed)", next.UTC().Format(time.RFC3339))
		}
		r.event(&s, false, "Scheduled", "CreateBackup", fmt.Sprintf("created Backup %s for %s%s", name, slot.UTC().Format(time.RFC3339), skipped))
		r.log.Info("scheduled backup", "schedule", req.String(), "backup", name)
	case apierrors.IsAlreadyExists(err):
		// Created before a restart, or by a reconcile that saw an older
		// status: the slot is done.
	default:
		return reconcile.Result{}, fmt.Errorf("create Backup %s/%s: %w", s.Namespace, name, err)
	}
	t := metav1.NewTime(slot)
	s.Status.LastScheduleTime = &t
	s.Status.LastBackup = name
	if err := r.prune(ctx, &s); err != nil {
		r.log.Warn("cannot prune old backups", "schedule", req.String(), "error", err.Error())
	}
	return r.sleep(ctx, &s, before, sl.Next(slot), now)
}

// sleep records the next slot and requeues for it.
func (r *scheduleController) sleep(ctx context.Context, s *v1alpha1.Schedule, before *v1alpha1.ScheduleStatus, next, now time.Time) (reconcile.Result, error) {
	if next.IsZero() {
		return reconcile.Result{}, r.setStatus(ctx, s, before, metav1.ConditionFalse, "InvalidSchedule", "no further slot", nil)
	}
	msg := "next backup at " + next.UTC().Format(time.RFC3339)
	if err := r.setStatus(ctx, s, before, metav1.ConditionTrue, "Scheduled", msg, &next); err != nil {
		return reconcile.Result{}, err
	}
	wait := next.Sub(now)
	if wait < time.Second {
		wait = time.Second
	}
	return reconcile.Result{RequeueAfter: wait}, nil
}

// setStatus sets the Ready condition and the next slot, and writes the
// status if it changed.
func (r *scheduleController) setStatus(ctx context.Context, s *v1alpha1.Schedule, before *v1alpha1.ScheduleStatus, ready metav1.ConditionStatus, reason, msg string, next *time.Time) error {
	s.Status.NextScheduleTime = nil
	if next != nil {
		t := metav1.NewTime(next.Truncate(time.Second))
		s.Status.NextScheduleTime = &t
	}
	setCondition(&s.Status.Conditions, r.now().Time, s.Generation, v1alpha1.ConditionReady, ready, reason, msg)
	if equality.Semantic.DeepEqual(before, &s.Status) {
		return nil
	}
	if ready == metav1.ConditionFalse {
		r.event(s, true, reason, "Schedule", msg)
	}
	err := r.client.Status().Update(ctx, s)
	if apierrors.IsInvalid(err) {
		// The stored Schedule breaks the CRD (a name too long for its
		// rule): the API server refuses every status write until it
		// changes, which reconciles it again. The event says why.
		r.log.Error("cannot record the status of a schedule", "schedule", s.Namespace+"/"+s.Name, "error", err.Error())
		return nil
	}
	return err
}

// prune deletes the Schedule's finished Backups beyond the newest
// keepLast. Running and Pending ones stay until a later prune.
func (r *scheduleController) prune(ctx context.Context, s *v1alpha1.Schedule) error {
	if s.Spec.KeepLast == nil || *s.Spec.KeepLast < 1 {
		// Below 1 the CRD refuses, and Reconcile never gets here; were
		// it to, deleting nothing is the safe reading.
		return nil
	}
	var list v1alpha1.BackupList
	if err := r.client.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabels{v1alpha1.LabelSchedule: s.Name}); err != nil {
		return err
	}
	mine := list.Items[:0]
	for _, b := range list.Items {
		if metav1.IsControlledBy(&b, s) {
			mine = append(mine, b)
		}
	}
	// The Backup just created may not be in the cache yet: count it.
	if !slices.ContainsFunc(mine, func(b v1alpha1.Backup) bool { return b.Name == s.Status.LastBackup }) {
		mine = append(mine, v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: s.Status.LastBackup}})
	}
	// Names end in the slot time: newest first.
	sort.Slice(mine, func(i, j int) bool { return mine[i].Name > mine[j].Name })
	var errs []error
	for i := int(*s.Spec.KeepLast); i < len(mine); i++ {
		b := &mine[i]
		if b.Status.Phase != v1alpha1.BackupCompleted && b.Status.Phase != v1alpha1.BackupFailed {
			continue
		}
		err := r.client.Delete(ctx, b, client.Preconditions{UID: &b.UID})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("delete Backup %s/%s: %w", b.Namespace, b.Name, err))
			continue
		}
		r.log.Info("pruned backup object", "schedule", s.Namespace+"/"+s.Name, "backup", b.Name)
	}
	return errors.Join(errs...)
}
