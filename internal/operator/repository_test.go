package operator

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
)

func TestRepositoryCheck(t *testing.T) {
	e := newEnv(t)
	const ns = "repos"
	const good, wrong, envSecret = "correct horse battery", "wrong-password-123", "s3-secret-access-key-xyz"
	e.namespace(ns)
	runner := newFakeRunner()
	runner.checkFn = func(r Repo) error {
		if r.Password != good {
			// A careless backend quoting its input: the operator must
			// scrub it.
			return fmt.Errorf("open %s: wrong password %q (key %s)", r.URL, r.Password, r.Env["AWS_SECRET_ACCESS_KEY"])
		}
		return nil
	}
	e.start(Options{Runner: runner})

	secret := func(name string, data map[string]string) {
		e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data})
	}
	repo := func(name, pwSecret, key string) {
		e.create(&v1alpha1.BackupRepository{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.BackupRepositorySpec{URL: "/srv/bunker/" + name,
				PasswordSecretRef: v1alpha1.SecretKeyRef{Name: pwSecret, Key: key},
				EnvSecretRef:      &v1alpha1.SecretRef{Name: "env"}}})
	}
	phase := func(name string, want v1alpha1.RepositoryPhase) *v1alpha1.BackupRepository {
		t.Helper()
		var r v1alpha1.BackupRepository
		eventually(t, name+" "+string(want), func() bool {
			e.get(ns, name, &r)
			return r.Status.Phase == want
		})
		return &r
	}
	secret("env", map[string]string{"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": envSecret})
	secret("good", map[string]string{"password": good + "\n"})
	secret("wrong", map[string]string{"pw": wrong})

	repo("ok", "good", "")
	r := phase("ok", v1alpha1.RepositoryReady)
	if r.Spec.PasswordSecretRef.Key != "password" {
		t.Errorf("default key %q", r.Spec.PasswordSecretRef.Key)
	}
	if c := condition(r.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue ||
		r.Status.LastChecked == nil || r.Status.ObservedGeneration != r.Generation {
		t.Errorf("status %+v", r.Status)
	}
	calls := runner.checkCalls()
	if len(calls) != 1 || calls[0].URL != "/srv/bunker/ok" || calls[0].Env["AWS_ACCESS_KEY_ID"] != "AKIAEXAMPLE" {
		t.Errorf("Runner.Check calls %d (%+v)", len(calls), calls)
	}

	repo("bad", "wrong", "pw")
	r = phase("bad", v1alpha1.RepositoryFailed)
	if !strings.Contains(r.Status.Message, "wrong password") {
		t.Errorf("message %q", r.Status.Message)
	}

	repo("nosecret", "missing", "")
	r = phase("nosecret", v1alpha1.RepositoryFailed)
	if r.Status.Message != "Secret repos/missing not found" {
		t.Errorf("message %q", r.Status.Message)
	}
	repo("nokey", "good", "other")
	r = phase("nokey", v1alpha1.RepositoryFailed)
	if !strings.Contains(r.Status.Message, `key "other" of Secret repos/good not found`) {
		t.Errorf("message %q", r.Status.Message)
	}

	// A spec change is checked again at once.
	patch := []byte(`{"spec":{"passwordSecretRef":{"name":"good","key":"password"}}}`)
	var bad v1alpha1.BackupRepository
	e.get(ns, "bad", &bad)
	if err := e.c.Patch(e.ctx(), &bad, rawMerge(patch)); err != nil {
		t.Fatal(err)
	}
	phase("bad", v1alpha1.RepositoryReady)
	e.waitEvent(ns, "Opened")

	// No secret in status, events or logs.
	var list v1alpha1.BackupRepositoryList
	if err := e.c.List(e.ctx(), &list); err != nil {
		t.Fatal(err)
	}
	dump := fmt.Sprintf("%+v\n%s\n%s", list.Items, strings.Join(e.events(ns), "\n"), e.log.String())
	for _, s := range []string{good, wrong, envSecret} {
		if strings.Contains(dump, s) {
			t.Errorf("%q appears in status, events or logs", s)
		}
	}
	if !strings.Contains(dump, "[redacted]") {
		t.Errorf("nothing was redacted: did the test check anything?")
	}
}

func TestRedact(t *testing.T) {
	r := Repo{Password: "pass", Env: map[string]string{"A": "passphrase", "B": "xy"}}
	if got := r.redact("pass passphrase xy"); got != "[redacted] [redacted] xy" {
		t.Errorf("redact = %q", got)
	}
	if got := truncate("ab€", 4); got != "a…" {
		t.Errorf("truncate = %q", got)
	}
}
