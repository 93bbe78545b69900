package operator

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

// TestRepositoryPolicy is issue 15, findings 5 and 8 at the operator: a
// tenant's repository with a scheme outside the policy fails with a
// status saying so and nothing runs; the Runner gets the tenant's policy
// for a tenant's repository and none for an admin's; and a tenant's Job
// carries the same policy in its environment.
func TestRepositoryPolicy(t *testing.T) {
	e := newEnv(t)
	const tenant, admin = "policy-tenant", "policy-admin"
	for _, ns := range []string{tenant, admin} {
		e.namespace(ns)
		e.repository(ns, ns+"-password")
	}
	runner := newFakeRunner()
	e.start(Options{Runner: runner, AdminNamespaces: []string{admin}})
	e.create(&v1alpha1.BackupRepository{ObjectMeta: metav1.ObjectMeta{Name: "local", Namespace: tenant},
		Spec: v1alpha1.BackupRepositorySpec{URL: "/var/lib/bunker", PasswordSecretRef: v1alpha1.SecretKeyRef{Name: "repo-password"}}})
	e.create(newBackup(tenant, "local", v1alpha1.BackupSpec{Repository: "local"}))
	b := e.backupPhase(tenant, "local", v1alpha1.BackupFailed)
	if !strings.Contains(b.Status.Message, `repository policy refuses scheme "local"`) {
		t.Errorf("Backup message %q", b.Status.Message)
	}
	for _, ns := range []string{tenant, admin} {
		e.create(newBackup(ns, "ok", v1alpha1.BackupSpec{}))
		e.backupPhase(ns, "ok", v1alpha1.BackupCompleted)
	}
	for _, c := range runner.backupCalls() {
		switch c.Repo.URL {
		case "s3:https://s3.example.net/bucket/" + tenant:
			if p := c.Repo.Policy; p == nil || p.AmbientCredentials() || !strings.Contains(strings.Join(p.Options().Schemes, ","), "s3") {
				t.Errorf("tenant's run: policy %+v", p)
			}
		case "s3:https://s3.example.net/bucket/" + admin:
			if c.Repo.Policy != nil {
				t.Errorf("admin's run: policy %+v", c.Repo.Policy.Options())
			}
		default:
			t.Errorf("the Runner ran %s", c.Repo.URL)
		}
	}
	for _, c := range runner.checkCalls() {
		if c.URL == "/var/lib/bunker" {
			t.Error("the Runner checked the refused repository")
		}
	}
}

// TestJobModeCarriesPolicy: a tenant's Job gets the policy through the
// CLI's variables; an admin's Job gets none.
func TestJobModeCarriesPolicy(t *testing.T) {
	e := newEnv(t)
	const tenant, admin = "jobpol-tenant", "jobpol-admin"
	for _, ns := range []string{tenant, admin} {
		e.namespace(ns)
		e.repository(ns, ns+"-password")
	}
	e.start(Options{Runner: newFakeRunner(), AdminNamespaces: []string{admin}, Mode: ModeJob, Image: "bunker:test"})
	for _, ns := range []string{tenant, admin} {
		e.create(newBackup(ns, "b", v1alpha1.BackupSpec{}))
		b := e.backupPhase(ns, "b", v1alpha1.BackupRunning)
		env := map[string]corev1.EnvVar{}
		for _, v := range e.job(ns, b.Status.Job).Spec.Template.Spec.Containers[0].Env {
			env[v.Name] = v
		}
		if ns == admin {
			for _, k := range []string{envAllowSchemes, envAllowHosts, envNoAmbient} {
				if _, ok := env[k]; ok {
					t.Errorf("admin's Job sets %s", k)
				}
			}
			continue
		}
		if got := env[envAllowSchemes].Value; got != strings.Join(TenantSchemes, ",") {
			t.Errorf("%s = %q", envAllowSchemes, got)
		}
		if got := env[envNoAmbient].Value; got != "1" {
			t.Errorf("%s = %q", envNoAmbient, got)
		}
	}
}
