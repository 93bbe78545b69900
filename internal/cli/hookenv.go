package cli

import (
	"context"
	"net/url"
	"strings"

	"github.com/bunkerbackup/bunker/internal/plan"
)

// hookBaseVars are what a hook or drill check inherits of bunker's
// environment without asking: what a shell and its tools need to run,
// and nothing that holds a secret. Everything else (BUNKER_PASSWORD,
// API tokens, AWS_*, AZURE_*, GOOGLE_*, PG*…) reaches a hook only when
// the plan names it in the hook's env.
var hookBaseVars = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "TZ",
	"LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY",
	"LC_MESSAGES", "LC_PAPER", "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION",
}

// defaultPath is a hook's PATH when bunker has none (systemd's default).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// hookEnv returns the whole environment of a hook: hookBaseVars from
// bunker's environment, then the plan's env entries (NAME passes
// bunker's NAME through when it is set, NAME=VALUE sets it), then vars,
// the run's documented BUNKER_* variables, which win.
func (a *App) hookEnv(planEnv []string, vars ...string) []string {
	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, k := range hookBaseVars {
		if v := a.Getenv(k); v != "" {
			set(k, v)
		}
	}
	if env["PATH"] == "" {
		set("PATH", defaultPath)
	}
	for _, e := range append(planEnv, vars...) {
		if k, v, ok := strings.Cut(e, "="); ok {
			set(k, v)
		} else if v := a.Getenv(k); v != "" {
			set(k, v)
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

// secretVars are the variables of bunker's environment that hold
// secrets, masked in run logs whatever printed them.
var secretVars = []string{
	"BUNKER_PASSWORD", "BUNKER_FROM_PASSWORD", "BUNKER_NEW_PASSWORD", "BUNKER_REST_PASSWORD",
	"BUNKER_SFTP_KEY_PASSPHRASE", "BUNKER_POSTGRES_DSN", "BUNKER_MYSQL_DSN", "BUNKER_MONGODB_URI",
	"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_CONNECTION_STRING", "AZURE_CLIENT_SECRET",
	"PGPASSWORD", "MYSQL_PWD",
}

// planSecrets returns every secret value a run of p may handle: the
// repository passwords, source DSNs (and the passwords in them), the API
// token and SMTP password, and secretVars. A reference that cannot be
// resolved now is skipped: it could not have been used either.
func (a *App) planSecrets(ctx context.Context, p *plan.Plan) []string {
	refs := []string{p.Daemon.APIToken, p.Daemon.APIReadToken}
	for _, r := range p.Repositories {
		refs = append(refs, r.Password)
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
		if v, err := a.planSecret(ctx, ref); err == nil {
			out = append(out, v)
		}
	}
	for _, k := range secretVars {
		if v := a.Getenv(k); v != "" {
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
