package app

import (
	"context"
	"net/url"
	"strings"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// secretVars are the variables of bunker's environment that hold
// secrets, masked in run logs whatever printed them.
var secretVars = []string{
	"BUNKER_PASSWORD", "BUNKER_FROM_PASSWORD", "BUNKER_NEW_PASSWORD", "BUNKER_REST_PASSWORD",
	"BUNKER_SFTP_KEY_PASSPHRASE", "BUNKER_POSTGRES_DSN", "BUNKER_MYSQL_DSN", "BUNKER_MONGODB_URI",
	"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET",
	"PGPASSWORD", "MYSQL_PWD",
}

// PlanSecrets returns every secret value a run of p may handle, to be
// masked in its log: the repository passwords, source DSNs (and the
// passwords in them), the API tokens and SMTP password, and the secret
// variables of the environment. A reference that cannot be resolved now
// is skipped: it could not have been used either.
func (a *App) PlanSecrets(ctx context.Context, p *plan.Plan) []string {
	refs := []string{p.Daemon.APIToken, p.Daemon.APIReadToken}
	for _, r := range p.Repositories {
		refs = append(refs, r.Password)
		for _, v := range r.Env {
			if plan.IsSecretRef(v) {
				refs = append(refs, v)
			}
		}
	}
	for _, j := range p.Jobs {
		refs = append(refs, j.Source.DSN)
	}
	if p.Notify.Email != nil {
		refs = append(refs, p.Notify.Email.Password)
	}
	var out []string
	for _, ref := range refs {
		if ref == "" {
			continue
		}
		if v, err := a.PlanSecret(ctx, ref); err == nil {
			out = append(out, v)
		}
	}
	for _, k := range secretVars {
		if v := a.getenv(k); v != "" {
			out = append(out, v)
		}
	}
	// A DSN's password also travels alone (PGPASSWORD, MYSQL_PWD).
	var alone []string
	for _, v := range out {
		alone = append(alone, dsnPasswords(v)...)
	}
	return append(out, alone...)
}

// dsnPasswords finds the passwords in a URL (user:password@) or a
// key=value connection string (password=…, sslpassword=…).
func dsnPasswords(dsn string) []string {
	var out []string
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw)
		}
		for k, vs := range u.Query() {
			if strings.Contains(strings.ToLower(k), "password") {
				out = append(out, vs...)
			}
		}
		return out
	}
	for _, f := range strings.Fields(dsn) {
		if k, v, ok := strings.Cut(f, "="); ok && strings.Contains(strings.ToLower(k), "password") {
			out = append(out, strings.Trim(v, "'"))
		}
	}
	return out
}
