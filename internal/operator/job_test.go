package operator

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

// finishJob sets a Job's status as the Job controller would when its pod
// ended: succeeded, or failed with msg (through the pod-failure policy
// when policy is set).
func (e *env) finishJob(ns, name string, ok bool, policy bool, msg string) {
	e.t.Helper()
	j := e.job(ns, name)
	now := metav1.Now()
	j.Status.StartTime = &now
	cond := func(typ batchv1.JobConditionType, reason, msg string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: msg,
			LastProbeTime: now, LastTransitionTime: now}
	}
	if ok {
		j.Status.Succeeded = 1
		j.Status.CompletionTime = &now
		j.Status.Conditions = []batchv1.JobCondition{
			cond(batchv1.JobSuccessCriteriaMet, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"),
			cond(batchv1.JobComplete, batchv1.JobReasonCompletionsReached, "Reached expected number of succeeded pods"),
		}
	} else {
		reason := batchv1.JobReasonBackoffLimitExceeded
		if policy {
			reason = batchv1.JobReasonPodFailurePolicy
		}
		j.Status.Failed = 1
		j.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobFailureTarget, reason, msg), cond(batchv1.JobFailed, reason, msg)}
	}
	if err := e.c.Status().Update(e.ctx(), j); err != nil {
		e.t.Fatalf("set status of Job %s: %v", name, err)
	}
}

// job waits for Job ns/name: the operator creates it just after it
// writes the Backup or Restore Running.
func (e *env) job(ns, name string) *batchv1.Job {
	e.t.Helper()
	var j batchv1.Job
	eventually(e.t, "Job "+name, func() bool {
		return e.c.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: name}, &j) == nil
	})
	return &j
}

func TestJobMode(t *testing.T) {
	e := newEnv(t)
	const ns, password = "jobs", "job-password-42"
	e.namespace(ns)
	e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: ns},
		StringData: map[string]string{"pw": password}})
	e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-env", Namespace: ns},
		StringData: map[string]string{"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s3-secret-key"}})
	e.create(&v1alpha1.BackupRepository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns},
		Spec: v1alpha1.BackupRepositorySpec{URL: "s3:https://s3.example.net/bkt",
			PasswordSecretRef: v1alpha1.SecretKeyRef{Name: "creds", Key: "pw"}, EnvSecretRef: &v1alpha1.SecretRef{Name: "s3-env"}}})
	runner := newFakeRunner()
	e.start(Options{Runner: runner, Mode: ModeJob, Image: "registry.example/bunker:1.0", ServiceAccount: "bunker-job"})

	t.Run("backup", func(t *testing.T) {
		spec := v1alpha1.BackupSpec{Repository: "repo",
			Selection:               v1alpha1.Selection{IncludeNamespaces: []string{"shop", "web-*"}, ExcludeResources: []string{"events"}, LabelSelector: "a=b,c!=d"},
			IncludeClusterResources: ptr.To(true), Tags: []string{"weekly"}}
		e.create(newBackup(ns, "b1", spec))
		b := e.backupPhase(ns, "b1", v1alpha1.BackupRunning)
		if b.Status.Job != "bunker-backup-b1-1" || b.Status.Attempts != 1 {
			t.Fatalf("status %+v", b.Status)
		}
		j := e.job(ns, b.Status.Job)
		tag := backupTag(b)
		wantArgs := []string{"backup", "kubernetes", "--include-namespaces=shop", "--include-namespaces=web-*",
			"--exclude-resources=events", "--selector=a=b,c!=d", "--cluster-resources=on", "--tag=weekly", "--tag=" + tag}
		pod := j.Spec.Template.Spec
		c := pod.Containers[0]
		if !slices.Equal(c.Args, wantArgs) {
			t.Errorf("args %q\nwant %q", c.Args, wantArgs)
		}
		if c.Image != "registry.example/bunker:1.0" || pod.ServiceAccountName != "bunker-job" || pod.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("image %s, service account %s, restart %s", c.Image, pod.ServiceAccountName, pod.RestartPolicy)
		}
		if !metav1.IsControlledBy(j, b) || j.Labels[v1alpha1.LabelBackup] != "b1" || *j.Spec.BackoffLimit != 0 {
			t.Errorf("owners %v, labels %v, backoffLimit %d", j.OwnerReferences, j.Labels, *j.Spec.BackoffLimit)
		}
		env := map[string]corev1.EnvVar{}
		for _, v := range c.Env {
			env[v.Name] = v
			if strings.Contains(v.Value, password) {
				t.Errorf("env %s holds the password", v.Name)
			}
		}
		if env[envRepository].Value != "s3:https://s3.example.net/bkt" {
			t.Errorf("%s = %q", envRepository, env[envRepository].Value)
		}
		if ref := env[envPassword].ValueFrom; ref == nil || ref.SecretKeyRef == nil ||
			ref.SecretKeyRef.Name != "creds" || ref.SecretKeyRef.Key != "pw" || env[envPassword].Value != "" {
			t.Errorf("%s = %+v", envPassword, env[envPassword])
		}
		// Issue 15 finding 1: never envFrom the tenant's Secret; only the
		// allowed keys, each by name.
		if len(c.EnvFrom) != 0 {
			t.Errorf("envFrom %+v", c.EnvFrom)
		}
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			if ref := env[k].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "s3-env" ||
				ref.SecretKeyRef.Key != k || env[k].Value != "" {
				t.Errorf("%s = %+v", k, env[k])
			}
		}
		for name, v := range env {
			if v.ValueFrom != nil && v.ValueFrom.SecretKeyRef != nil && v.ValueFrom.SecretKeyRef.Name == "s3-env" && !tenantEnvKeys[name] {
				t.Errorf("%s comes from the tenant's Secret", name)
			}
		}
		if strings.Contains(fmt.Sprintf("%+v", j), password) {
			t.Errorf("the Job holds the password")
		}

		// The Job controller reports success; the snapshot is found by
		// its tag.
		runner.mu.Lock()
		runner.snapshots[tag] = BackupResult{SnapshotID: strings.Repeat("ab", 32), Objects: 42, BytesAdded: 4096}
		runner.mu.Unlock()
		e.finishJob(ns, j.Name, true, false, "")
		b = e.backupPhase(ns, "b1", v1alpha1.BackupCompleted)
		if b.Status.SnapshotID != strings.Repeat("ab", 32) || b.Status.Objects != 42 || b.Status.BytesAdded != 4096 {
			t.Errorf("status %+v", b.Status)
		}
		if len(runner.backupCalls()) != 0 {
			t.Errorf("job mode ran Runner.Backup")
		}
	})

	t.Run("backup job fails", func(t *testing.T) {
		e.create(newBackup(ns, "b2", v1alpha1.BackupSpec{}))
		b := e.backupPhase(ns, "b2", v1alpha1.BackupRunning)
		e.finishJob(ns, b.Status.Job, false, false, "Job has reached the specified backoff limit")
		b = e.backupPhase(ns, "b2", v1alpha1.BackupFailed)
		if !strings.Contains(b.Status.Message, "backoff limit") {
			t.Errorf("message %q", b.Status.Message)
		}
	})

	t.Run("job succeeded without a snapshot", func(t *testing.T) {
		e.create(newBackup(ns, "b3", v1alpha1.BackupSpec{}))
		b := e.backupPhase(ns, "b3", v1alpha1.BackupRunning)
		e.finishJob(ns, b.Status.Job, true, false, "")
		b = e.backupPhase(ns, "b3", v1alpha1.BackupFailed)
		if !strings.Contains(b.Status.Message, "no snapshot tagged") {
			t.Errorf("message %q", b.Status.Message)
		}
	})

	t.Run("job deleted", func(t *testing.T) {
		// A Job that disappears (deleted, or never created because the
		// operator died in between) is started again when no snapshot
		// exists.
		e.create(newBackup(ns, "b4", v1alpha1.BackupSpec{}))
		b := e.backupPhase(ns, "b4", v1alpha1.BackupRunning)
		j := e.job(ns, b.Status.Job)
		if err := e.c.Delete(e.ctx(), j, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "a second Job", func() bool {
			e.get(ns, "b4", b)
			return b.Status.Job == "bunker-backup-b4-2" && b.Status.Attempts == 2
		})
		runner.mu.Lock()
		runner.snapshots[backupTag(b)] = BackupResult{SnapshotID: strings.Repeat("cd", 32)}
		runner.mu.Unlock()
		e.finishJob(ns, b.Status.Job, true, false, "")
		b = e.backupPhase(ns, "b4", v1alpha1.BackupCompleted)
		if b.Status.SnapshotID != strings.Repeat("cd", 32) {
			t.Errorf("snapshot %s", b.Status.SnapshotID)
		}
	})

	t.Run("restore", func(t *testing.T) {
		spec := v1alpha1.RestoreSpec{Repository: "repo", Snapshot: "0123abcd",
			Selection:        v1alpha1.Selection{ExcludeNamespaces: []string{"kube-*"}},
			NamespaceMapping: map[string]v1alpha1.NamespaceName{"shop": "shop2", "db": "db2"}, DryRun: true}
		e.create(newRestore(ns, "r1", spec))
		r := e.restorePhase(ns, "r1", v1alpha1.RestoreRunning)
		j := e.job(ns, r.Status.Job)
		want := []string{"restore", "kubernetes", "--exclude-namespaces=kube-*", "--namespace-mapping=db=db2",
			"--namespace-mapping=shop=shop2", "--existing=skip", "--dry-run", "--", "0123abcd"}
		if got := j.Spec.Template.Spec.Containers[0].Args; !slices.Equal(got, want) {
			t.Errorf("args %q\nwant %q", got, want)
		}
		e.finishJob(ns, j.Name, false, true, "Container bunker for pod jobs/"+j.Name+"-x failed with exit code 3 matching FailJob rule at index 1")
		r = e.restorePhase(ns, "r1", v1alpha1.RestorePartiallyFailed)
		if !strings.Contains(r.Status.Message, "could not be restored") {
			t.Errorf("message %q", r.Status.Message)
		}

		e.create(newRestore(ns, "r2", v1alpha1.RestoreSpec{BackupName: "b1"}))
		r = e.restorePhase(ns, "r2", v1alpha1.RestoreRunning)
		j = e.job(ns, r.Status.Job)
		if args := j.Spec.Template.Spec.Containers[0].Args; args[len(args)-1] != strings.Repeat("ab", 32) {
			t.Errorf("args %q: not the snapshot of Backup b1", args)
		}
		e.finishJob(ns, j.Name, true, false, "")
		e.restorePhase(ns, "r2", v1alpha1.RestoreCompleted)
	})
}
