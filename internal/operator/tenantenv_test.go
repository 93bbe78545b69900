package operator

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

// TestTenantEnvRefused is issue 15, findings 1 and 8, from the tenant's
// side: an envSecretRef that sets a control variable, an empty password
// over the real one, or a variable naming a file of the operator fails
// its BackupRepository and its Backups with a message naming the key
// (not its value), and the Runner is never called with it.
func TestTenantEnvRefused(t *testing.T) {
	e := newEnv(t)
	const ns = "tenant"
	e.namespace(ns)
	runner := newFakeRunner()
	e.start(Options{Runner: runner})
	e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pw", Namespace: ns},
		StringData: map[string]string{"password": "tenant-password"}})

	attacks := []struct {
		name string
		data map[string]string
		key  string // the key the status must name
	}{
		{"command", map[string]string{"BUNKER_PASSWORD": "", "BUNKER_PASSWORD_COMMAND": "touch /tmp/pwned-by-tenant"}, "BUNKER_PASSWORD_COMMAND"},
		{"emptypw", map[string]string{"BUNKER_PASSWORD": "", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"}, "BUNKER_PASSWORD"},
		{"awsfile", map[string]string{"AWS_SHARED_CREDENTIALS_FILE": "/var/run/secrets/operator/aws"}, "AWS_SHARED_CREDENTIALS_FILE"},
		{"kubeconfig", map[string]string{"KUBECONFIG": "/etc/kubernetes/admin.conf"}, "KUBECONFIG"},
		{"gcsfile", map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": "/var/run/secrets/gcp.json"}, "GOOGLE_APPLICATION_CREDENTIALS"},
		{"sftpkey", map[string]string{"BUNKER_SFTP_KEY": "/root/.ssh/id_ed25519"}, "BUNKER_SFTP_KEY"},
		{"noderoot", map[string]string{"BUNKER_NODE_ROOT": "/proc/1/root"}, "BUNKER_NODE_ROOT"},
	}
	for _, a := range attacks {
		e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "env-" + a.name, Namespace: ns}, StringData: a.data})
		e.create(&v1alpha1.BackupRepository{ObjectMeta: metav1.ObjectMeta{Name: a.name, Namespace: ns},
			Spec: v1alpha1.BackupRepositorySpec{URL: "s3:https://s3.example.net/bkt/" + a.name,
				PasswordSecretRef: v1alpha1.SecretKeyRef{Name: "pw"}, EnvSecretRef: &v1alpha1.SecretRef{Name: "env-" + a.name}}})
		e.create(newBackup(ns, "b-"+a.name, v1alpha1.BackupSpec{Repository: a.name}))
	}
	for _, a := range attacks {
		var r v1alpha1.BackupRepository
		eventually(t, a.name+" Failed", func() bool {
			e.get(ns, a.name, &r)
			return r.Status.Phase == v1alpha1.RepositoryFailed
		})
		if !strings.Contains(r.Status.Message, a.key) || !strings.Contains(r.Status.Message, "refused") {
			t.Errorf("%s: message %q does not name %s", a.name, r.Status.Message, a.key)
		}
		b := e.backupPhase(ns, "b-"+a.name, v1alpha1.BackupFailed)
		if !strings.Contains(b.Status.Message, a.key) {
			t.Errorf("Backup %s: message %q does not name %s", b.Name, b.Status.Message, a.key)
		}
		for k, v := range a.data {
			if v != "" && (strings.Contains(r.Status.Message, v) || strings.Contains(b.Status.Message, v)) {
				t.Errorf("%s: a status shows the value of %s", a.name, k)
			}
		}
	}
	for _, c := range runner.checkCalls() {
		t.Errorf("Runner.Check called for %s with env %v", c.URL, c.Env)
	}
	for _, c := range runner.backupCalls() {
		t.Errorf("Runner.Backup called for %s with env %v", c.Repo.URL, c.Repo.Env)
	}
}

// TestTenantEnvGetenv: a run's backends see the allowed keys the tenant
// set and nothing else — not a refused key, not the operator's own.
func TestTenantEnvGetenv(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "operator-secret")
	repo := Repo{Password: "pw", Env: map[string]string{"AWS_ACCESS_KEY_ID": "AKIATENANT", "KUBECONFIG": "/x"}}
	if got := repo.Getenv("AWS_ACCESS_KEY_ID"); got != "AKIATENANT" {
		t.Errorf("AWS_ACCESS_KEY_ID = %q", got)
	}
	for _, k := range []string{"AWS_SECRET_ACCESS_KEY", "KUBECONFIG", "HOME", "BUNKER_PASSWORD_COMMAND"} {
		if got := repo.Getenv(k); got != "" {
			t.Errorf("%s = %q, want unset", k, got)
		}
	}
}

// TestTenantEnvRefusedRestore is TestTenantEnvRefused for Restores, in
// both modes: a Restore whose repository's envSecretRef holds a refused
// key fails with a status naming the key (not its value); the in-process
// operator never calls the Runner, and job mode creates no Job.
func TestTenantEnvRefusedRestore(t *testing.T) {
	e := newEnv(t)
	const inproc, jobs = "tenant-inproc", "tenant-jobs"
	runner := newFakeRunner()
	for _, ns := range []string{inproc, jobs} {
		e.namespace(ns)
		e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pw", Namespace: ns},
			StringData: map[string]string{"password": "tenant-password"}})
		e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "env", Namespace: ns},
			StringData: map[string]string{"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "BUNKER_PASSWORD_COMMAND": "cat /var/run/secrets/kubernetes.io/serviceaccount/token"}})
		e.create(&v1alpha1.BackupRepository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: ns},
			Spec: v1alpha1.BackupRepositorySpec{URL: "s3:https://s3.example.net/bkt/" + ns,
				PasswordSecretRef: v1alpha1.SecretKeyRef{Name: "pw"}, EnvSecretRef: &v1alpha1.SecretRef{Name: "env"}}})
	}
	// Both namespaces are tenants'.
	e.start(Options{Runner: runner, Namespace: inproc, AdminNamespaces: []string{"bunker-admin"}})
	e.start(Options{Runner: runner, Namespace: jobs, AdminNamespaces: []string{"bunker-admin"}, Mode: ModeJob, Image: "registry.example/bunker:1.0"})

	for _, ns := range []string{inproc, jobs} {
		e.create(newRestore(ns, "r", v1alpha1.RestoreSpec{Snapshot: "latest"}))
		x := e.restorePhase(ns, "r", v1alpha1.RestoreFailed)
		if !strings.Contains(x.Status.Message, "BUNKER_PASSWORD_COMMAND") || !strings.Contains(x.Status.Message, "refused") {
			t.Errorf("%s: message %q does not name BUNKER_PASSWORD_COMMAND", ns, x.Status.Message)
		}
		if strings.Contains(x.Status.Message, "serviceaccount") || strings.Contains(x.Status.Message, "AKIAEXAMPLE") {
			t.Errorf("%s: message %q shows a value of the Secret", ns, x.Status.Message)
		}
		if x.Status.Job != "" || x.Status.Attempts != 0 {
			t.Errorf("%s: status %+v: the Restore started", ns, x.Status)
		}
		var jl batchv1.JobList
		if err := e.c.List(e.ctx(), &jl, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, j := range jl.Items {
			t.Errorf("%s: Job %s created", ns, j.Name)
		}
	}
	for _, c := range runner.restoreCalls() {
		t.Errorf("Runner.Restore called for %s with env %v", c.Repo.URL, c.Repo.Env)
	}
	for _, c := range runner.checkCalls() {
		t.Errorf("Runner.Check called for %s with env %v", c.URL, c.Env)
	}
}
