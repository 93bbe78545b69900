package source

import (
	"os"
	"strings"
)

// secretVars are the variables bunker reads that hold a secret, or name
// the file or command a secret comes from. Every one of them is read by
// bunker itself (or by the user's plan through env:NAME); none is read by
// a database tool or a user's command, so a child never needs them.
var secretVars = map[string]bool{
	"BUNKER_PASSWORD":              true, // the repository password
	"BUNKER_PASSWORD_FILE":         true, // where it is kept
	"BUNKER_PASSWORD_COMMAND":      true, // what prints it
	"BUNKER_FROM_PASSWORD":         true, // copy: the source repository's password
	"BUNKER_NEW_PASSWORD":          true, // key add / key passwd
	"BUNKER_REST_PASSWORD":         true, // the credential of a bunker serve user
	"BUNKER_SFTP_KEY":              true, // private key file for SFTP
	"BUNKER_SFTP_KEY_PASSPHRASE":   true,
	"BUNKER_S3_SSE_C_KEY":          true, // customer-provided S3 encryption key
	"BUNKER_POSTGRES_DSN":          true, // connection strings, which may hold
	"BUNKER_MYSQL_DSN":             true, // the database password
	"BUNKER_MONGODB_URI":           true,
	"BUNKER_MONGODB_PASSWORD_FILE": true,
}

// secretWords mark a BUNKER_ variable as a secret even when bunker does
// not define it: the names operators give the secrets a plan references
// with env:NAME (the daemon's API token, BUNKER_REPO_PASSWORD in the
// Kubernetes example).
var secretWords = []string{"PASSWORD", "PASSPHRASE", "TOKEN", "SECRET", "CREDENTIAL"}

// IsSecretVar reports whether the environment variable name is one of
// bunker's secrets: one of secretVars, or a BUNKER_ name containing one
// of secretWords or ending in _KEY or _DSN. Names are compared in upper
// case, as Windows does. The user's own variables (PGPASSWORD, MYSQL_PWD,
// AWS_*…) are not bunker's: the tools bunker drives read them.
func IsSecretVar(name string) bool {
	name = strings.ToUpper(name)
	if !strings.HasPrefix(name, "BUNKER_") {
		return false
	}
	if secretVars[name] || strings.HasSuffix(name, "_KEY") || strings.HasSuffix(name, "_DSN") {
		return true
	}
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// ChildEnv returns the environment of a program bunker starts on the
// user's behalf (a dump or restore tool, a --stdin-from-command command,
// a password or secret command): this process's environment without
// bunker's secrets (IsSecretVar), then extra, NAME=VALUE entries that win
// over inherited ones. A child gets one of bunker's secrets only when the
// caller passes it in extra.
func ChildEnv(extra ...string) []string {
	env := make([]string, 0, len(os.Environ())+len(extra))
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !IsSecretVar(name) {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}
