package operator

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

func TestCheckSpec(t *testing.T) {
	okBackup := v1alpha1.BackupSpec{Repository: "repo", Selection: v1alpha1.Selection{IncludeNamespaces: []string{"shop", "web-*"}}, Tags: []string{"daily"}}
	okRepo := v1alpha1.BackupRepositorySpec{URL: "s3:https://s3.example.net/b", PasswordSecretRef: v1alpha1.SecretKeyRef{Name: "pw"}}
	for _, tc := range []struct {
		kind string
		spec any
		want string // "" for none
	}{
		{"Backup", &okBackup, ""},
		{"Backup", &v1alpha1.BackupSpec{}, "spec.repository: empty"},
		{"Backup", &v1alpha1.BackupSpec{Repository: "Repo_1"}, "spec.repository: does not match"},
		{"Backup", &v1alpha1.BackupSpec{Repository: strings.Repeat("r", 254)}, "spec.repository: 254 characters, more than 253"},
		{"Backup", &v1alpha1.BackupSpec{Repository: "repo", Tags: []string{"a,bunker.dev/backup=x"}}, "spec.tags[0]: does not match"},
		{"Backup", &v1alpha1.BackupSpec{Repository: "repo", Selection: v1alpha1.Selection{ExcludeNamespaces: []string{"a", ""}}}, "spec.excludeNamespaces[1]: empty"},
		{"Backup", &v1alpha1.BackupSpec{Repository: "repo", Selection: v1alpha1.Selection{IncludeResources: make([]string, 257)}}, "spec.includeResources: 257 items, more than 256"},
		{"Schedule", &v1alpha1.ScheduleSpec{Schedule: "@daily", Template: okBackup, KeepLast: ptr.To[int32](1)}, ""},
		{"Schedule", &v1alpha1.ScheduleSpec{Schedule: "@daily", Template: okBackup, KeepLast: ptr.To[int32](-1)}, "spec.keepLast: -1 is less than the minimum 1"},
		{"Schedule", &v1alpha1.ScheduleSpec{Schedule: "@daily", Template: okBackup, KeepLast: ptr.To[int32](0)}, "spec.keepLast: 0 is less than the minimum 1"},
		{"Schedule", &v1alpha1.ScheduleSpec{Schedule: "@daily", Template: v1alpha1.BackupSpec{}}, "spec.template.repository: empty"},
		{"Schedule", &v1alpha1.ScheduleSpec{Schedule: "@every 1m; rm -rf", Template: okBackup}, "spec.schedule: does not match"},
		{"BackupRepository", &okRepo, ""},
		{"BackupRepository", &v1alpha1.BackupRepositorySpec{URL: okRepo.URL}, "spec.passwordSecretRef.name: empty"},
		{"BackupRepository", &v1alpha1.BackupRepositorySpec{URL: okRepo.URL, PasswordSecretRef: okRepo.PasswordSecretRef, EnvSecretRef: &v1alpha1.SecretRef{}}, "spec.envSecretRef.name: empty"},
		{"BackupRepository", &v1alpha1.BackupRepositorySpec{URL: "s3:https://user:hunter2@h/ b", PasswordSecretRef: okRepo.PasswordSecretRef}, "spec.url: does not match"},
		{"Restore", &v1alpha1.RestoreSpec{Repository: "repo", Snapshot: "latest"}, ""},
		{"Restore", &v1alpha1.RestoreSpec{Repository: "repo", Snapshot: "latest", Existing: "replace"}, `spec.existing: not one of ["skip" "update"]`},
		{"Restore", &v1alpha1.RestoreSpec{Repository: "repo", Snapshot: "latest", NamespaceMapping: map[string]v1alpha1.NamespaceName{"a": "b", "c": "d,kube-system"}}, "spec.namespaceMapping[c]: does not match"},
		{"Restore", &v1alpha1.RestoreSpec{Repository: "repo", Snapshot: "--help"}, "spec.snapshot: does not match"},
	} {
		err := checkSpec(tc.kind, tc.spec)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s %+v: %v", tc.kind, tc.spec, err)
		case tc.want == "":
		case err == nil:
			t.Errorf("%s %+v: no error, want %q", tc.kind, tc.spec, tc.want)
		case !strings.HasPrefix(err.Error(), tc.want) || !isRefused(err):
			t.Errorf("%s: %v\nwant %q…", tc.kind, err, tc.want)
		case strings.Contains(err.Error(), "hunter2"):
			t.Errorf("%s: the message quotes the value: %v", tc.kind, err)
		}
	}
}

// TestMaxScheduleName: maxScheduleName is the CRD's rule.
func TestMaxScheduleName(t *testing.T) {
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, crd := range crds {
		if crd.Spec.Names.Kind != "Schedule" {
			continue
		}
		for _, r := range crd.Spec.Versions[0].Schema.OpenAPIV3Schema.XValidations {
			if r.Rule == "self.metadata.name.size() <= "+strconv.Itoa(maxScheduleName) {
				return
			}
		}
		t.Fatalf("the Schedule CRD has no rule self.metadata.name.size() <= %d", maxScheduleName)
	}
	t.Fatal("no Schedule CRD")
}

// looseCRDs replaces the CRDs with copies that check nothing but the
// structure: as an older or hand-edited CRD, or validation turned off,
// would store objects.
func (e *env) looseCRDs() {
	e.t.Helper()
	crds, err := CRDs()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, crd := range crds {
		var cur apiextensionsv1.CustomResourceDefinition
		e.get("", crd.Name, &cur)
		for i := range cur.Spec.Versions {
			loosen(cur.Spec.Versions[i].Schema.OpenAPIV3Schema)
		}
		if err := e.c.Update(e.ctx(), &cur); err != nil {
			e.t.Fatal(err)
		}
	}
}

func loosen(s *apiextensionsv1.JSONSchemaProps) {
	if s == nil {
		return
	}
	s.Minimum, s.Maximum, s.MinLength, s.MaxLength, s.Pattern, s.Enum = nil, nil, nil, nil, "", nil
	s.MinItems, s.MaxItems, s.MinProperties, s.MaxProperties, s.XValidations = nil, nil, nil, nil, nil
	for k, p := range s.Properties {
		loosen(&p)
		s.Properties[k] = p
	}
	if s.Items != nil {
		loosen(s.Items.Schema)
	}
	if s.AdditionalProperties != nil {
		loosen(s.AdditionalProperties.Schema)
	}
}

// createLoose creates obj, retrying while the API server still applies
// the CRD's rules (it takes a moment to serve the loosened CRD).
func (e *env) createLoose(obj client.Object) {
	e.t.Helper()
	eventually(e.t, "the loosened CRD", func() bool {
		err := e.c.Create(e.ctx(), obj.DeepCopyObject().(client.Object))
		if err != nil && !apierrors.IsInvalid(err) {
			e.t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
		}
		return err == nil
	})
}

// TestStoredInvalidSpecs: objects the CRD refuses, stored anyway (an
// older or hand-edited CRD), neither panic nor loop the operator: each
// fails with a status naming the field, and nothing runs or is created.
func TestStoredInvalidSpecs(t *testing.T) {
	e := newEnv(t)
	const ns = "old"
	e.namespace(ns)
	e.repository(ns, "old-crd-password")

	// Today's CRD refuses keepLast -1.
	neg := &v1alpha1.Schedule{ObjectMeta: metav1.ObjectMeta{Name: "neg", Namespace: ns},
		Spec: v1alpha1.ScheduleSpec{Schedule: "@every 1m", KeepLast: ptr.To[int32](-1), Template: v1alpha1.BackupSpec{Repository: "repo"}}}
	if err := e.c.Create(e.ctx(), neg.DeepCopy()); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "keepLast") {
		t.Fatalf("the API server took keepLast -1: %v", err)
	}

	e.looseCRDs()
	long := strings.Repeat("l", maxScheduleName+1)
	schedules := map[string]string{ // name → what the status or event names
		"neg":      "spec.keepLast: -1",
		"zero":     "spec.keepLast: 0",
		"norepo":   "spec.template.repository: empty",
		"commatag": "spec.template.tags[0]",
		long:       "metadata.name: 49 characters",
	}
	for name := range schedules {
		s := neg.DeepCopy()
		s.Name = name
		switch name {
		case "neg":
		case "zero":
			s.Spec.KeepLast = ptr.To[int32](0)
		case "norepo":
			s.Spec.KeepLast, s.Spec.Template.Repository = nil, ""
		case "commatag":
			s.Spec.KeepLast, s.Spec.Template.Tags = nil, []string{"daily,bunker.dev/backup=x"}
		case long:
			s.Spec.KeepLast = nil
		}
		e.createLoose(s)
	}
	e.createLoose(&v1alpha1.Backup{ObjectMeta: metav1.ObjectMeta{Name: "norepo", Namespace: ns}})
	e.createLoose(&v1alpha1.BackupRepository{ObjectMeta: metav1.ObjectMeta{Name: "nosecret", Namespace: ns},
		Spec: v1alpha1.BackupRepositorySpec{URL: "s3:https://s3.example.net/bkt/nosecret"}})
	e.createLoose(newBackup(ns, "nosecret", v1alpha1.BackupSpec{Repository: "nosecret"}))
	e.createLoose(newRestore(ns, "both", v1alpha1.RestoreSpec{Snapshot: "latest", BackupName: "norepo"}))
	e.createLoose(newRestore(ns, "existing", v1alpha1.RestoreSpec{Snapshot: "latest", Existing: "replace"}))
	e.createLoose(newRestore(ns, "nosecret", v1alpha1.RestoreSpec{Repository: "nosecret", Snapshot: "latest"}))
	if err := InstallCRDs(e.ctx(), e.k.Config(), time.Minute); err != nil {
		t.Fatal(err)
	}

	// Every slot of the Schedules is due.
	runner := newFakeRunner()
	e.start(Options{Runner: runner, Clock: &fakeClock{t: time.Now().Add(2 * time.Minute)}})
	for name, want := range schedules {
		if name == long {
			// The API server refuses the status of a Schedule whose name
			// breaks the CRD: the event says why.
			e.waitEvent(ns, "InvalidSpec: "+want)
			continue
		}
		var s v1alpha1.Schedule
		eventually(t, "Schedule "+name+" InvalidSpec", func() bool {
			e.get(ns, name, &s)
			c := condition(s.Status.Conditions, v1alpha1.ConditionReady)
			return c != nil && c.Reason == "InvalidSpec"
		})
		if c := condition(s.Status.Conditions, v1alpha1.ConditionReady); c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, want) {
			t.Errorf("Schedule %s: Ready %s %q, want one naming %s", name, c.Status, c.Message, want)
		}
	}
	for name, want := range map[string]string{"norepo": "spec.repository: empty", "nosecret": "spec.passwordSecretRef.name: empty"} {
		if b := e.backupPhase(ns, name, v1alpha1.BackupFailed); !strings.Contains(b.Status.Message, want) {
			t.Errorf("Backup %s: message %q, want one naming %s", name, b.Status.Message, want)
		}
	}
	for name, want := range map[string]string{"both": "exactly one", "existing": "spec.existing", "nosecret": "spec.passwordSecretRef.name: empty"} {
		if x := e.restorePhase(ns, name, v1alpha1.RestoreFailed); !strings.Contains(x.Status.Message, want) {
			t.Errorf("Restore %s: message %q, want one naming %s", name, x.Status.Message, want)
		}
	}
	var r v1alpha1.BackupRepository
	eventually(t, "BackupRepository nosecret Failed", func() bool {
		e.get(ns, "nosecret", &r)
		return r.Status.Phase == v1alpha1.RepositoryFailed
	})
	if !strings.Contains(r.Status.Message, "spec.passwordSecretRef.name: empty") {
		t.Errorf("BackupRepository nosecret: message %q", r.Status.Message)
	}

	var list v1alpha1.BackupList
	if err := e.c.List(e.ctx(), &list, client.InNamespace(ns), client.HasLabels{v1alpha1.LabelSchedule}); err != nil {
		t.Fatal(err)
	}
	for _, b := range list.Items {
		t.Errorf("Schedule %s created Backup %s", b.Labels[v1alpha1.LabelSchedule], b.Name)
	}
	if n := len(runner.backupCalls()) + len(runner.restoreCalls()); n != 0 {
		t.Errorf("the Runner ran %d refused specs", n)
	}
	for _, c := range runner.checkCalls() {
		if c.URL == "s3:https://s3.example.net/bkt/nosecret" {
			t.Errorf("Runner.Check called for the repository with no Secret name")
		}
	}
	if log := e.log.String(); strings.Contains(log, "panic") {
		t.Errorf("the operator panicked:\n%s", log)
	}
}

// TestPruneKeepLastBelowOne: prune deletes nothing when keepLast is below
// 1, whatever Reconcile let through.
func TestPruneKeepLastBelowOne(t *testing.T) {
	e := newEnv(t)
	const ns = "prune"
	e.namespace(ns)
	s := &v1alpha1.Schedule{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: ns},
		Spec: v1alpha1.ScheduleSpec{Schedule: "@daily", Template: v1alpha1.BackupSpec{Repository: "repo"}}}
	e.create(s)
	for _, name := range []string{"s-20260101000000", "s-20260102000000"} {
		b := newBackup(ns, name, v1alpha1.BackupSpec{})
		b.Labels = map[string]string{v1alpha1.LabelSchedule: s.Name}
		b.OwnerReferences = []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Schedule", Name: s.Name, UID: s.UID, Controller: ptr.To(true)}}
		e.create(b)
		b.Status.Phase = v1alpha1.BackupCompleted
		if err := e.c.Status().Update(e.ctx(), b); err != nil {
			t.Fatal(err)
		}
	}
	r := &scheduleController{&Operator{client: e.c, log: slog.New(slog.NewTextHandler(e.log, nil))}}
	for _, keep := range []int32{-1, 0, -1 << 31} {
		s.Spec.KeepLast = ptr.To(keep)
		s.Status.LastBackup = "s-20260102000000"
		if err := r.prune(context.Background(), s); err != nil {
			t.Errorf("keepLast %d: %v", keep, err)
		}
	}
	var list v1alpha1.BackupList
	if err := e.c.List(e.ctx(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Errorf("%d Backups left, want 2", len(list.Items))
	}
	// keepLast 1 still prunes.
	s.Spec.KeepLast = ptr.To[int32](1)
	if err := r.prune(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the older Backup pruned", func() bool {
		var b v1alpha1.Backup
		err := e.c.Get(e.ctx(), client.ObjectKey{Namespace: ns, Name: "s-20260101000000"}, &b)
		return apierrors.IsNotFound(err)
	})
}
