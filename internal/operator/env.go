package operator

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// tenantEnvKeys are the variables a BackupRepository's envSecretRef may
// set: backend credential values only. A tenant's Secret is data, never
// control, so it may not hold a BUNKER_* control variable (the password
// lookup, the repository, the node root), a variable naming a file of the
// operator or agent (AWS_SHARED_CREDENTIALS_FILE, GOOGLE_APPLICATION_CREDENTIALS,
// BUNKER_SFTP_KEY, BUNKER_REST_CA, KUBECONFIG, SSH_AUTH_SOCK), or one that
// picks an identity of the operator (AWS_PROFILE). The exceptions named
// BUNKER_* are values the rest and s3 backends read as secrets.
//
// The child environment of a run is built from these keys alone: a key the
// tenant leaves unset is unset, never taken from the operator's own
// environment. (An administrator opt-in to lend the operator's identity
// may come later; there is none today.)
var tenantEnvKeys = map[string]bool{
	// s3
	"AWS_ACCESS_KEY_ID":     true,
	"AWS_SECRET_ACCESS_KEY": true,
	"AWS_SESSION_TOKEN":     true,
	"AWS_REGION":            true,
	"AWS_DEFAULT_REGION":    true,
	"BUNKER_S3_SSE_C_KEY":   true,
	// azure
	"AZURE_STORAGE_ACCOUNT":           true,
	"AZURE_STORAGE_KEY":               true,
	"AZURE_STORAGE_SAS_TOKEN":         true,
	"AZURE_STORAGE_CONNECTION_STRING": true,
	// rest
	"BUNKER_REST_PASSWORD":    true,
	"BUNKER_REST_FINGERPRINT": true,
}

// TenantEnvKeys returns the variables an envSecretRef may set, sorted.
func TenantEnvKeys() []string {
	keys := make([]string, 0, len(tenantEnvKeys))
	for k := range tenantEnvKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// refusedError is a spec the operator will not run, whatever happens to
// the cluster: the referrer fails rather than waits.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

func isRefused(err error) bool {
	var r *refusedError
	return errors.As(err, &r)
}

// tenantEnv turns the data of the env Secret ns/name into the variables
// of a run. Any key not in tenantEnvKeys refuses the whole Secret, with
// an error naming the refused keys (never their values).
func tenantEnv(data map[string][]byte, ns, name string) (map[string]string, error) {
	var refused []string
	env := make(map[string]string, len(data))
	for k, v := range data {
		if !tenantEnvKeys[k] {
			refused = append(refused, k)
			continue
		}
		env[k] = string(v)
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return nil, &refusedError{msg: fmt.Sprintf("envSecretRef Secret %s/%s: key %s refused: only backend credentials may be set (%s)",
			ns, name, strings.Join(refused, ", "), strings.Join(TenantEnvKeys(), ", "))}
	}
	return env, nil
}

// Getenv is the whole environment a backend of repo sees: the allowed keys
// of its env Secret, nothing of the process that runs it.
func (repo Repo) Getenv(k string) string {
	if !tenantEnvKeys[k] {
		return ""
	}
	return repo.Env[k]
}
