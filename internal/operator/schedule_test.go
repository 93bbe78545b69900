package operator

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

func TestSchedule(t *testing.T) {
	e := newEnv(t)
	const ns = "sched"
	e.namespace(ns)
	e.repository(ns, "schedule-password")
	clock := &fakeClock{t: time.Now()}
	runner := newFakeRunner()
	op := e.start(Options{Runner: runner, Clock: clock})

	s := &v1alpha1.Schedule{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: ns},
		Spec: v1alpha1.ScheduleSpec{Schedule: "@every 1m", KeepLast: ptr.To[int32](2),
			Template: v1alpha1.BackupSpec{Repository: "repo", Tags: []string{"scheduled"}}}}
	e.create(s)
	// The first slot is the first whole minute after the creation.
	var cur v1alpha1.Schedule
	eventually(t, "the next slot", func() bool {
		e.get(ns, s.Name, &cur)
		return cur.Status.NextScheduleTime != nil
	})
	slot1 := cur.CreationTimestamp.Truncate(time.Minute).Add(time.Minute)
	if !cur.Status.NextScheduleTime.Time.Equal(slot1) {
		t.Fatalf("next slot %v, want %v", cur.Status.NextScheduleTime.Time, slot1)
	}
	names := func() []string {
		var list v1alpha1.BackupList
		if err := e.c.List(e.ctx(), &list, client.InNamespace(ns), client.MatchingLabels{v1alpha1.LabelSchedule: s.Name}); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range list.Items {
			out = append(out, b.Name)
		}
		slices.Sort(out)
		return out
	}
	lastSlot := func(want time.Time) {
		t.Helper()
		eventually(t, "lastScheduleTime "+want.UTC().Format(time.RFC3339), func() bool {
			e.get(ns, s.Name, &cur)
			return cur.Status.LastScheduleTime != nil && cur.Status.LastScheduleTime.Time.Equal(want)
		})
	}
	name1 := "nightly-" + slot1.UTC().Format("20060102150405")

	clock.Set(slot1.Add(5 * time.Second))
	e.poke(&cur)
	lastSlot(slot1)
	if got := names(); !slices.Equal(got, []string{name1}) {
		t.Fatalf("backups %q, want [%s]", got, name1)
	}
	b := e.backupPhase(ns, name1, v1alpha1.BackupCompleted)
	if !metav1.IsControlledBy(b, &cur) || !slices.Equal(b.Spec.Tags, []string{"scheduled"}) {
		t.Errorf("backup %s: owners %v, spec %+v", b.Name, b.OwnerReferences, b.Spec)
	}
	// The metric follows the status write that backupPhase saw.
	eventually(t, "last_success{schedule}", func() bool {
		return value(op.op.metrics.lastSuccess.WithLabelValues(ns, s.Name)) > 0
	})

	// A restart that lost the status write (the operator died between
	// creating the Backup and recording it) recreates the same name and
	// moves on.
	op.stop()
	cur.Status.LastScheduleTime = nil
	if err := e.c.Status().Update(e.ctx(), &cur); err != nil {
		t.Fatal(err)
	}
	op = e.start(Options{Runner: runner, Clock: clock})
	lastSlot(slot1)
	if got := names(); !slices.Equal(got, []string{name1}) {
		t.Fatalf("after a restart: backups %q, want [%s]", got, name1)
	}

	// Ten minutes of downtime: one catch-up Backup, for the latest slot.
	op.stop()
	slot11 := slot1.Add(10 * time.Minute)
	clock.Set(slot11.Add(20 * time.Second))
	e.start(Options{Runner: runner, Clock: clock})
	lastSlot(slot11)
	name11 := "nightly-" + slot11.UTC().Format("20060102150405")
	if got := names(); !slices.Equal(got, []string{name1, name11}) {
		t.Fatalf("after downtime: backups %q, want [%s %s]", got, name1, name11)
	}
	e.waitEvent(ns, "catching up")
	e.backupPhase(ns, name11, v1alpha1.BackupCompleted)

	// keepLast 2: the third Backup prunes the first.
	slot12 := slot11.Add(time.Minute)
	clock.Set(slot12)
	e.poke(&cur)
	lastSlot(slot12)
	name12 := "nightly-" + slot12.UTC().Format("20060102150405")
	eventually(t, "the oldest backup pruned", func() bool {
		return slices.Equal(names(), []string{name11, name12})
	})

	// Suspended: nothing more.
	patch := []byte(`{"spec":{"suspend":true}}`)
	if err := e.c.Patch(e.ctx(), &cur, rawMerge(patch)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "suspended", func() bool {
		e.get(ns, s.Name, &cur)
		c := condition(cur.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Reason == "Suspended"
	})
	clock.Set(slot12.Add(5 * time.Minute))
	e.poke(&cur)
	e.backupPhase(ns, name12, v1alpha1.BackupCompleted)
	if got := names(); !slices.Equal(got, []string{name11, name12}) {
		t.Errorf("suspended: backups %q", got)
	}

	// A cron expression the API server's pattern lets through but cron
	// does not accept.
	bad := &v1alpha1.Schedule{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: ns},
		Spec: v1alpha1.ScheduleSpec{Schedule: "61 * * * *", Template: v1alpha1.BackupSpec{Repository: "repo"}}}
	e.create(bad)
	eventually(t, "InvalidSchedule", func() bool {
		e.get(ns, bad.Name, bad)
		c := condition(bad.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == "InvalidSchedule" && strings.Contains(c.Message, "61")
	})
}

func TestParseSchedule(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		spec, after, next string
	}{
		{"@every 1h", "2026-11-26T10:20:00Z", "2026-11-26T11:00:00Z"},
		{"@every 1m", "2026-11-26T10:20:00Z", "2026-11-26T10:21:00Z"},
		{"@every 7m", "1970-01-01T00:06:59Z", "1970-01-01T00:07:00Z"},
		{"@every 90m", "1970-01-01T01:30:00Z", "1970-01-01T03:00:00Z"},
		{"30 2 * * *", "2026-11-26T10:20:00Z", "2026-11-27T02:30:00Z"},
		{"@daily", "2026-11-26T10:20:00Z", "2026-11-27T00:00:00Z"},
		{"CRON_TZ=Europe/Berlin 0 3 * * *", "2026-11-26T10:20:00Z", "2026-11-27T02:00:00Z"},
		{"0 0 * * 1-5", "2026-11-27T10:00:00Z", "2026-11-30T00:00:00Z"}, // Friday → Monday
	} {
		s, err := parseSchedule(tc.spec)
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if got := s.Next(at(tc.after)); !got.Equal(at(tc.next)) {
			t.Errorf("%q after %s: %s, want %s", tc.spec, tc.after, got.UTC().Format(time.RFC3339), tc.next)
		}
	}
	for _, bad := range []string{"", "@every 30s", "@every 1m0.5s", "@every", "@every x", "61 * * * *", "* * * *", "TZ=Nowhere/City 0 * * * *", "CRON_TZ=UTC"} {
		if _, err := parseSchedule(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// Catch-up takes the latest slot, whatever the schedule.
	s, _ := parseSchedule("*/5 * * * *")
	if got := latestSlot(s, at("2026-11-26T10:05:00Z"), at("2026-11-26T13:12:00Z")); !got.Equal(at("2026-11-26T13:10:00Z")) {
		t.Errorf("latest slot %v", got)
	}
	e, _ := parseSchedule("@every 1h")
	if got := latestSlot(e, at("2026-11-26T10:00:00Z"), at("2026-11-26T13:12:00Z")); !got.Equal(at("2026-11-26T13:00:00Z")) {
		t.Errorf("latest slot %v", got)
	}
	if got := backupName("nightly", at("2026-11-26T13:00:00Z")); got != "nightly-20261126130000" {
		t.Errorf("backupName = %s", got)
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"@every 1h", "30 2 * * *", "CRON_TZ=Europe/Berlin 0 3 * * *", "@daily", "TZ=UTC @every 5m",
		"*/5 1-3 ? JAN-MAR MON,FRI", "0 0 30 2 *", "@every 1h30m", "TZ= 0 * * * *", "0-59/0 * * * *"} {
		f.Add(s)
	}
	base := time.Date(2026, 11, 26, 10, 20, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := parseSchedule(spec)
		if err != nil {
			return
		}
		n := s.Next(base)
		if n.IsZero() {
			return
		}
		if !n.After(base) {
			t.Fatalf("%q: next %v is not after %v", spec, n, base)
		}
		// Slots name Backups to the second, and the schedule moves on
		// from a slot (a Schedule never loops on one).
		if !n.Equal(n.Truncate(time.Second)) {
			t.Fatalf("%q: slot %v is not a whole second", spec, n)
		}
		if n2 := s.Next(n); !n2.IsZero() && !n2.After(n) {
			t.Fatalf("%q: next after %v is %v", spec, n, n2)
		}
		if l := latestSlot(s, n, n.Add(time.Hour)); l.Before(n) || l.After(n.Add(time.Hour)) {
			t.Fatalf("%q: latest slot %v outside [%v, +1h]", spec, l, n)
		}
	})
}
