package operator

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bunkerbackup/bunker/internal/operator/api/v1alpha1"
	"github.com/bunkerbackup/bunker/internal/storage/location"
)

// missingError is a referenced object that does not exist (yet): the
// referrer waits for it rather than failing.
type missingError struct{ what string }

func (e *missingError) Error() string { return e.what + " not found" }

func isMissing(err error) bool {
	var m *missingError
	return errors.As(err, &m)
}

// repository returns the BackupRepository ns/name from the cache.
func (o *Operator) repository(ctx context.Context, ns, name string) (*v1alpha1.BackupRepository, error) {
	var r v1alpha1.BackupRepository
	if err := o.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &r); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &missingError{what: fmt.Sprintf("BackupRepository %s/%s", ns, name)}
		}
		return nil, fmt.Errorf("get BackupRepository %s/%s: %w", ns, name, err)
	}
	return &r, nil
}

// resolve reads the repository's Secrets (uncached: the operator keeps
// no copy of them) and returns what the Runner needs.
func (o *Operator) resolve(ctx context.Context, r *v1alpha1.BackupRepository) (Repo, error) {
	return resolveWith(ctx, o.reader, r, o.opts.repositoryPolicy(r.Namespace))
}

// ResolveRepository reads the BackupRepository ns/name and its Secrets
// through c and returns what a Runner needs (the node agent's way in),
// to be opened under policy (nil: none; see TenantPolicy).
func ResolveRepository(ctx context.Context, c client.Reader, ns, name string, policy *location.Policy) (Repo, error) {
	var r v1alpha1.BackupRepository
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &r); err != nil {
		if apierrors.IsNotFound(err) {
			return Repo{}, &missingError{what: fmt.Sprintf("BackupRepository %s/%s", ns, name)}
		}
		return Repo{}, fmt.Errorf("get BackupRepository %s/%s: %w", ns, name, err)
	}
	return resolveWith(ctx, c, &r, policy)
}

func resolveWith(ctx context.Context, reader client.Reader, r *v1alpha1.BackupRepository, policy *location.Policy) (Repo, error) {
	repo := Repo{URL: r.Spec.URL, Policy: policy}
	if err := policy.CheckScheme(r.Spec.URL); err != nil {
		return Repo{}, &refusedError{msg: fmt.Sprintf("BackupRepository %s/%s: %v", r.Namespace, r.Name, err)}
	}
	ref := r.Spec.PasswordSecretRef
	key := ref.Key
	if key == "" {
		key = "password"
	}
	sec, err := getSecret(ctx, reader, r.Namespace, ref.Name)
	if err != nil {
		return Repo{}, err
	}
	pw, ok := sec.Data[key]
	if !ok {
		return Repo{}, &missingError{what: fmt.Sprintf("key %q of Secret %s/%s", key, r.Namespace, ref.Name)}
	}
	repo.Password = strings.TrimRight(string(pw), "\r\n")
	if repo.Password == "" {
		return Repo{}, &refusedError{msg: fmt.Sprintf("key %q of Secret %s/%s is empty", key, r.Namespace, ref.Name)}
	}
	if r.Spec.EnvSecretRef != nil {
		env, err := getSecret(ctx, reader, r.Namespace, r.Spec.EnvSecretRef.Name)
		if err != nil {
			return Repo{}, err
		}
		if repo.Env, err = tenantEnv(env.Data, r.Namespace, env.Name); err != nil {
			return Repo{}, err
		}
	}
	return repo, nil
}

func getSecret(ctx context.Context, reader client.Reader, ns, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &missingError{what: fmt.Sprintf("Secret %s/%s", ns, name)}
		}
		return nil, fmt.Errorf("get Secret %s/%s: %w", ns, name, err)
	}
	return &s, nil
}

// minRedact is the shortest secret value scrubbed from messages: shorter
// ones would mangle ordinary words and give little away.
const minRedact = 4

// redact replaces every secret of repo in msg with "[redacted]", longest
// first so that a secret containing another is replaced whole.
func (repo Repo) redact(msg string) string {
	secrets := make([]string, 0, 1+len(repo.Env))
	if len(repo.Password) >= minRedact {
		secrets = append(secrets, repo.Password)
	}
	for _, v := range repo.Env {
		if len(v) >= minRedact {
			secrets = append(secrets, v)
		}
	}
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	return msg
}

// truncate keeps status messages within a sane size.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// Redact replaces the repository's secrets in msg with "[redacted]".
func (repo Repo) Redact(msg string) string { return repo.redact(msg) }
