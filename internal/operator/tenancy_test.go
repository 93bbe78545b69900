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

// TestTenancy is issue 15, findings 2 and 3: a Backup or Restore outside
// an admin namespace is confined to its own namespace. Selecting another
// namespace or mapping into one fails it before the Runner runs; a
// Restore runs with its namespace as the filter and cluster-scoped
// objects off. The same specs in the admin namespace run as given.
func TestTenancy(t *testing.T) {
	e := newEnv(t)
	const tenant, admin = "team-a", "bunker-admin"
	for _, ns := range []string{tenant, admin} {
		e.namespace(ns)
		e.repository(ns, ns+"-password")
	}
	runner := newFakeRunner()
	e.start(Options{Runner: runner, AdminNamespaces: []string{admin}})

	wide := v1alpha1.BackupSpec{Selection: v1alpha1.Selection{IncludeNamespaces: []string{"team-b", "kube-system"}}}
	e.create(newBackup(tenant, "wide", wide))
	b := e.backupPhase(tenant, "wide", v1alpha1.BackupFailed)
	if !strings.Contains(b.Status.Message, `"team-b"`) || !strings.Contains(b.Status.Message, "refused") {
		t.Errorf("Backup message %q does not name the namespace refused", b.Status.Message)
	}
	escape := v1alpha1.RestoreSpec{Snapshot: "latest", NamespaceMapping: map[string]v1alpha1.NamespaceName{tenant: "kube-system"}}
	e.create(newRestore(tenant, "escape", escape))
	x := e.restorePhase(tenant, "escape", v1alpha1.RestoreFailed)
	if !strings.Contains(x.Status.Message, `"kube-system"`) || !strings.Contains(x.Status.Message, "refused") {
		t.Errorf("Restore message %q does not name the namespace refused", x.Status.Message)
	}
	if n := len(runner.backupCalls()) + len(runner.restoreCalls()); n != 0 {
		t.Fatalf("the Runner ran %d refused specs", n)
	}

	// A tenant's plain Backup and Restore run, confined.
	e.create(newBackup(tenant, "own", v1alpha1.BackupSpec{Volumes: true}))
	e.backupPhase(tenant, "own", v1alpha1.BackupCompleted)
	e.create(newRestore(tenant, "own", v1alpha1.RestoreSpec{Snapshot: "latest"}))
	e.restorePhase(tenant, "own", v1alpha1.RestoreCompleted)
	bc, rc := runner.backupCalls(), runner.restoreCalls()
	if len(bc) != 1 || len(rc) != 1 {
		t.Fatalf("Runner calls: %d backups, %d restores", len(bc), len(rc))
	}
	if s := bc[0].Spec; !equalJSON(s.IncludeNamespaces, []string{tenant}) || s.IncludeClusterResources == nil || *s.IncludeClusterResources {
		t.Errorf("tenant Backup ran with %+v", s)
	}
	if got := BackupArgs(bc[0].Spec, nil); !strings.Contains(strings.Join(got, " "), "--cluster-resources=off") {
		t.Errorf("tenant Backup args %v", got)
	}
	if c := rc[0]; !equalJSON(c.Spec.IncludeNamespaces, []string{tenant}) || c.ClusterResources == nil || *c.ClusterResources {
		t.Errorf("tenant Restore ran with %+v, cluster resources %v", c.Spec, c.ClusterResources)
	}
	if got := RestoreArgs(rc[0].Spec, "latest", rc[0].ClusterResources); !strings.Contains(strings.Join(got, " "), "--cluster-resources=off") {
		t.Errorf("tenant Restore args %v", got)
	}

	// The admin namespace keeps today's behaviour.
	e.create(newBackup(admin, "wide", wide))
	e.backupPhase(admin, "wide", v1alpha1.BackupCompleted)
	e.create(newRestore(admin, "escape", escape))
	e.restorePhase(admin, "escape", v1alpha1.RestoreCompleted)
	bc, rc = runner.backupCalls(), runner.restoreCalls()
	if len(bc) != 2 || !equalJSON(bc[1].Spec.IncludeNamespaces, wide.IncludeNamespaces) || bc[1].Spec.IncludeClusterResources != nil {
		t.Errorf("admin Backup ran with %+v", bc)
	}
	if len(rc) != 2 || len(rc[1].Spec.IncludeNamespaces) != 0 || !equalJSON(rc[1].Spec.NamespaceMapping, escape.NamespaceMapping) || rc[1].ClusterResources != nil {
		t.Errorf("admin Restore ran with %+v", rc)
	}
}

// TestScheduleTenancy: a Schedule outside an admin namespace whose
// template the tenancy rule refuses fails at once (Ready False, a message
// naming what was refused) and creates no Backup, though its slots are
// due; its plain sibling runs confined, and the admin's runs as given.
func TestScheduleTenancy(t *testing.T) {
	e := newEnv(t)
	const tenant, admin = "team-a", "bunker-admin"
	for _, ns := range []string{tenant, admin} {
		e.namespace(ns)
		e.repository(ns, ns+"-password")
	}
	runner := newFakeRunner()
	// Every Schedule's first slot is due at its first look.
	e.start(Options{Runner: runner, AdminNamespaces: []string{admin}, Clock: &fakeClock{t: time.Now().Add(2 * time.Minute)}})

	schedule := func(ns, name string, tmpl v1alpha1.BackupSpec) *v1alpha1.Schedule {
		tmpl.Repository = "repo"
		s := &v1alpha1.Schedule{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.ScheduleSpec{Schedule: "@every 1m", Template: tmpl}}
		e.create(s)
		return s
	}
	refused := map[string]string{ // Schedule → what the message names
		"wide":    `"team-b" refused`,
		"glob":    `"team-*" refused`,
		"cluster": "includeClusterResources: refused",
	}
	schedule(tenant, "wide", v1alpha1.BackupSpec{Selection: v1alpha1.Selection{IncludeNamespaces: []string{tenant, "team-b"}}, Volumes: true})
	schedule(tenant, "glob", v1alpha1.BackupSpec{Selection: v1alpha1.Selection{IncludeNamespaces: []string{"team-*"}}})
	schedule(tenant, "cluster", v1alpha1.BackupSpec{IncludeClusterResources: ptr.To(true)})
	own := schedule(tenant, "own", v1alpha1.BackupSpec{Volumes: true})
	wide := schedule(admin, "wide", v1alpha1.BackupSpec{Selection: v1alpha1.Selection{IncludeNamespaces: []string{tenant, "team-b"}}})

	for name, want := range refused {
		var s v1alpha1.Schedule
		eventually(t, "Schedule "+name+" refused", func() bool {
			e.get(tenant, name, &s)
			c := condition(s.Status.Conditions, v1alpha1.ConditionReady)
			return c != nil && c.Status == metav1.ConditionFalse
		})
		c := condition(s.Status.Conditions, v1alpha1.ConditionReady)
		if c.Reason != "InvalidSpec" || !strings.Contains(c.Message, "template: ") || !strings.Contains(c.Message, want) {
			t.Errorf("Schedule %s: Ready %s %q, want InvalidSpec naming %s", name, c.Reason, c.Message, want)
		}
		if s.Status.LastBackup != "" || s.Status.NextScheduleTime != nil {
			t.Errorf("Schedule %s: status %+v", name, s.Status)
		}
	}
	e.waitEvent(tenant, `InvalidSpec: template: includeNamespaces: namespace "team-b" refused`)

	// The others create their Backup of the due slot, which runs.
	var backups []*v1alpha1.Backup
	for _, s := range []*v1alpha1.Schedule{own, wide} {
		var cur v1alpha1.Schedule
		eventually(t, "a Backup of "+s.Namespace+"/"+s.Name, func() bool {
			e.get(s.Namespace, s.Name, &cur)
			return cur.Status.LastBackup != ""
		})
		backups = append(backups, e.backupPhase(s.Namespace, cur.Status.LastBackup, v1alpha1.BackupCompleted))
	}
	var list v1alpha1.BackupList
	if err := e.c.List(e.ctx(), &list, client.InNamespace(tenant)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != backups[0].Name {
		var names []string
		for _, b := range list.Items {
			names = append(names, b.Name)
		}
		t.Errorf("Backups in %s: %v, want only %s", tenant, names, backups[0].Name)
	}
	calls := runner.backupCalls()
	if len(calls) != 2 {
		t.Fatalf("%d Runner.Backup calls, want 2", len(calls))
	}
	for _, c := range calls {
		tenantCall := slices.ContainsFunc(c.Tags, func(tag string) bool { return strings.HasPrefix(tag, v1alpha1.TagBackup+"="+tenant+"/") })
		switch {
		case tenantCall && (!equalJSON(c.Spec.IncludeNamespaces, []string{tenant}) || c.Spec.IncludeClusterResources == nil || *c.Spec.IncludeClusterResources):
			t.Errorf("the tenant's scheduled Backup ran with %+v", c.Spec)
		case !tenantCall && !equalJSON(c.Spec.IncludeNamespaces, []string{tenant, "team-b"}):
			t.Errorf("the admin's scheduled Backup ran with %+v", c.Spec)
		}
	}
}
