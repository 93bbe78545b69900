package plan

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/units"
	"go.yaml.in/yaml/v3"
)

// Plan is a parsed and checked plan file.
type Plan struct {
	Repositories []*Repository `yaml:"repositories"`
	Jobs         []*Job        `yaml:"jobs"`
	Drills       []*Drill      `yaml:"drills"`
	Notify       Notify        `yaml:"notify"`
	Daemon       Daemon        `yaml:"daemon"`
	Policy       Policy        `yaml:"policy"`
	Positions    `json:"-"`

	File string `yaml:"-"`
}

// Repository is a place backups go, with the traits the 3-2-1 rule
// counts.
type Repository struct {
	Name     string `yaml:"name"`
	Location string `yaml:"location"`
	// Password is a secret reference: env:NAME, file:/path or
	// command:CMD. Never a literal.
	Password  string `yaml:"password"`
	Site      string `yaml:"site"`   // onsite | offsite
	Medium    string `yaml:"medium"` // disk | object | tape | …
	Immutable bool   `yaml:"immutable"`
	Region    string `yaml:"region"`
	// Airgapped repositories are attached only for copy windows: jobs
	// copy to them when they are reachable, status reports how stale
	// they are.
	Airgapped bool `yaml:"airgapped"`
	// Env is what the repository's storage backend sees of the
	// environment on top of bunker's own (credentials, endpoints,
	// regions): variable → a secret reference or a literal. A literal is
	// refused for a name that looks secret (LooksSecret).
	Env map[string]string `yaml:"env"`
	// LimitUpload and LimitDownload bound the repository's transfers
	// (units.ParseRate: "5M", "800K", a number of KiB).
	LimitUpload   string `yaml:"limit_upload"`
	LimitDownload string `yaml:"limit_download"`
	// Hooks run around every job, copy, check and prune that uses the
	// repository.
	Hooks Hooks `yaml:"hooks"`
	// Check is the repository's scheduled check.
	Check *RepoCheck `yaml:"check"`
	// Prune is the repository's prune schedule: with one, retention in
	// the repository forgets only, and prune runs on this schedule.
	Prune     *RepoPrune `yaml:"prune"`
	Positions `json:"-"`
}

// RepoCheck is a repository's scheduled check.
type RepoCheck struct {
	Schedule string `yaml:"schedule"`
	// ReadDataSubset is the data the check reads besides the structure
	// (the --read-data-subset grammar: N%, a size such as 500M, n/t);
	// "" reads no data.
	ReadDataSubset string `yaml:"read_data_subset"`
	Positions      `json:"-"`

	schedule Schedule
}

// RepoPrune is a repository's prune schedule.
type RepoPrune struct {
	Schedule string `yaml:"schedule"`
	// MaxUnused is the unused space tolerated in packs before they are
	// repacked: a percentage ("5%", the default) or "unlimited".
	MaxUnused string `yaml:"max_unused"`
	Positions `json:"-"`

	schedule Schedule
}

// ScheduleOf returns the check's parsed schedule.
func (c *RepoCheck) ScheduleOf() Schedule { return c.schedule }

// ScheduleOf returns the prune's parsed schedule.
func (c *RepoPrune) ScheduleOf() Schedule { return c.schedule }

// MaxUnusedFraction is max_unused as prune takes it: a fraction of 1,
// -1 for "unlimited", 0.05 when unset.
func (c *RepoPrune) MaxUnusedFraction() (float64, error) {
	return ParseMaxUnused(c.MaxUnused)
}

// ParseMaxUnused reads a prune's tolerated unused space: a percentage
// ("5%" or "5") as a fraction of 1, "unlimited" as -1, "" as the default
// 0.05.
func ParseMaxUnused(s string) (float64, error) {
	switch s = strings.TrimSpace(s); s {
	case "":
		return 0.05, nil
	case "unlimited":
		return -1, nil
	}
	v, ok := units.ParsePercent(s)
	if !ok {
		return 0, fmt.Errorf("max_unused %q: want a percentage from 0%% to 100%%, or unlimited", s)
	}
	return v, nil
}

// PrunesOnSchedule reports whether the repository prunes on its own
// schedule (then retention in it forgets only).
func (r *Repository) PrunesOnSchedule() bool { return r.Prune != nil }

// Job is one dataset backed up on a schedule.
type Job struct {
	Name        string        `yaml:"name"`
	Source      Source        `yaml:"source"`
	Schedule    string        `yaml:"schedule"` // cron expression or "every 15m"
	Jitter      time.Duration `yaml:"jitter"`
	Repository  string        `yaml:"repository"`
	Copies      []*Copy       `yaml:"copies"`
	Retention   Retention     `yaml:"retention"`
	Hooks       Hooks         `yaml:"hooks"`
	RPO         time.Duration `yaml:"rpo"`
	RTO         time.Duration `yaml:"rto"`
	Concurrency int           `yaml:"concurrency"`
	Timeout     time.Duration `yaml:"timeout"`
	Retries     Retries       `yaml:"retries"`
	Tags        []string      `yaml:"tags"`
	Positions   `json:"-"`

	schedule Schedule
}

// Source says what a job backs up.
type Source struct {
	Type    string   `yaml:"type"` // files | stdin | postgres | mysql | mongodb | kubernetes
	Paths   []string `yaml:"paths"`
	Exclude []string `yaml:"exclude"`
	// Files sources, as the backup flags of the same names (borgmatic's
	// and restic's): pattern files, CACHEDIR.TAG and marker files,
	// staying on the paths' filesystems, paths read from files.
	ExcludeFile      []string `yaml:"exclude_file"`
	ExcludeCaches    bool     `yaml:"exclude_caches"`
	ExcludeIfPresent []string `yaml:"exclude_if_present"`
	OneFileSystem    bool     `yaml:"one_file_system"`
	FilesFrom        []string `yaml:"files_from"`
	Command          []string `yaml:"command"`  // stdin: the command whose output is backed up
	Filename         string   `yaml:"filename"` // stdin: the file name in the snapshot
	// DSN is a secret reference (env:, file:, command:) for database
	// sources: connection strings carry passwords.
	DSN       string   `yaml:"dsn"`
	Databases []string `yaml:"databases"`
	Physical  bool     `yaml:"physical"`
	Jobs      int      `yaml:"jobs"`
	// Kubernetes sources: the kubeconfig context ("" = current, or the
	// pod's service account), namespace globs, and the volume files of
	// the claims on this node (the node agent: node_root is where the
	// node's filesystem is mounted, /host in deploy/kubernetes).
	Context           string   `yaml:"context"`
	IncludeNamespaces []string `yaml:"include_namespaces"`
	ExcludeNamespaces []string `yaml:"exclude_namespaces"`
	Volumes           bool     `yaml:"volumes"`
	NodeRoot          string   `yaml:"node_root"`
	Positions         `json:"-"`
}

// Copy is a copy of a job's snapshots in another repository.
type Copy struct {
	Repository string    `yaml:"repository"`
	Retention  Retention `yaml:"retention"`
	Positions  `json:"-"`
}

// Retention is a keep policy.
type Retention struct {
	KeepLast    int           `yaml:"keep_last"`
	KeepHourly  int           `yaml:"keep_hourly"`
	KeepDaily   int           `yaml:"keep_daily"`
	KeepWeekly  int           `yaml:"keep_weekly"`
	KeepMonthly int           `yaml:"keep_monthly"`
	KeepYearly  int           `yaml:"keep_yearly"`
	KeepWithin  time.Duration `yaml:"keep_within" duration:"retention"`
	// restic's keep-within-hourly … yearly: the newest snapshot of each
	// period within the duration of the newest snapshot.
	KeepWithinHourly  time.Duration `yaml:"keep_within_hourly" duration:"retention"`
	KeepWithinDaily   time.Duration `yaml:"keep_within_daily" duration:"retention"`
	KeepWithinWeekly  time.Duration `yaml:"keep_within_weekly" duration:"retention"`
	KeepWithinMonthly time.Duration `yaml:"keep_within_monthly" duration:"retention"`
	KeepWithinYearly  time.Duration `yaml:"keep_within_yearly" duration:"retention"`
	Prune             bool          `yaml:"prune"`
	Positions         `json:"-"`
}

// Empty reports whether the policy keeps everything (none is set).
func (r Retention) Empty() bool {
	return r.KeepLast == 0 && r.KeepHourly == 0 && r.KeepDaily == 0 && r.KeepWeekly == 0 && r.KeepMonthly == 0 && r.KeepYearly == 0 && r.KeepWithin == 0 &&
		r.KeepWithinHourly == 0 && r.KeepWithinDaily == 0 && r.KeepWithinWeekly == 0 && r.KeepWithinMonthly == 0 && r.KeepWithinYearly == 0
}

// Hooks run around a job.
type Hooks struct {
	Before    []*Hook `yaml:"before"`
	After     []*Hook `yaml:"after"`
	OnFailure []*Hook `yaml:"on_failure"`
}

// Hook is a command with a timeout (default 5m), run by /bin/sh -c.
type Hook struct {
	Command string        `yaml:"command"`
	Timeout time.Duration `yaml:"timeout"`
	// Env is what the hook gets of the environment besides the basics
	// (PATH, HOME, locale…) and the run's BUNKER_* variables: NAME
	// passes bunker's own NAME through, NAME=VALUE sets it.
	Env       []string `yaml:"env"`
	Positions `json:"-"`
}

// Retries retry a failed run with exponential backoff.
type Retries struct {
	Attempts int           `yaml:"attempts"`
	Backoff  time.Duration `yaml:"backoff"`
}

// Drill restores a job's backup into a sandbox and checks it.
type Drill struct {
	Name      string   `yaml:"name"`
	Job       string   `yaml:"job"`
	Schedule  string   `yaml:"schedule"`
	Pick      string   `yaml:"pick"` // latest | random
	Validate  Validate `yaml:"validate"`
	Positions `json:"-"`

	schedule Schedule
}

// Validate says how a drill checks a restore.
type Validate struct {
	// Hashes compares every restored file with the snapshot (default).
	Hashes *bool    `yaml:"hashes"`
	Checks []*Check `yaml:"checks"`
}

// Check is a query (databases) or command (files) whose output must
// equal Expect.
type Check struct {
	SQL       string   `yaml:"sql"`
	Database  string   `yaml:"database"` // for sql: the database (default postgres)
	Command   string   `yaml:"command"`
	Expect    string   `yaml:"expect"`
	Env       []string `yaml:"env"` // for command: as Hook.Env
	Positions `json:"-"`
}

// Notify are where alerts go.
type Notify struct {
	Webhooks     []*Webhook     `yaml:"webhooks"`
	Healthchecks []*Healthcheck `yaml:"healthchecks"`
	Email        *Email         `yaml:"email"`
	Services     []*Service     `yaml:"services"`
}

// Service is a notification service (ntfy, Gotify, PagerDuty, Slack,
// Teams, Telegram, Matrix, Discord, SMTP…) named by a Shoutrrr URL such
// as ntfy://ntfy.sh/topic or telegram://token@telegram?chats=@chan. The
// URL carries the service's credentials, so it is a secret reference.
type Service struct {
	URL       string   `yaml:"url"`
	Events    []string `yaml:"events"` // as a webhook's; default all
	Positions `json:"-"`
}

// Webhook receives a JSON body (or a Slack-compatible one) per event.
type Webhook struct {
	URL       string   `yaml:"url"`
	Format    string   `yaml:"format"` // json | slack
	Events    []string `yaml:"events"` // failure, rpo, drill, recovery; default all
	Positions `json:"-"`
}

// Healthcheck pings URL/start, URL (success) and URL/fail for a job.
type Healthcheck struct {
	Job       string `yaml:"job"`
	URL       string `yaml:"url"`
	Positions `json:"-"`
}

// Email sends alerts through SMTP.
type Email struct {
	SMTP      string   `yaml:"smtp"` // host:port
	From      string   `yaml:"from"`
	To        []string `yaml:"to"`
	Username  string   `yaml:"username"`
	Password  string   `yaml:"password"` // secret reference
	StartTLS  *bool    `yaml:"starttls"`
	Positions `json:"-"`
}

// Policy is the copy rule every job's dataset is held to (the 3-2-1
// rule by default): at least Copies copies counting the live data, on
// at least Media different media, Offsite of them off site, Immutable of
// them immutable. Zero values take the defaults 3, 2, 1 and 0.
type Policy struct {
	Copies    int `yaml:"copies" json:"copies"`
	Media     int `yaml:"media" json:"media"`
	Offsite   int `yaml:"offsite" json:"offsite"`
	Immutable int `yaml:"immutable" json:"immutable"`
	Positions `json:"-"`
}

// Rule returns the policy with defaults applied.
func (p Policy) Rule() Policy {
	if p.Copies == 0 {
		p.Copies = 3
	}
	if p.Media == 0 {
		p.Media = 2
	}
	if p.Offsite == 0 {
		p.Offsite = 1
	}
	return p
}

// Daemon configures bunker daemon.
type Daemon struct {
	Listen   string `yaml:"listen"`    // HTTP address for /metrics, the API and the dashboard
	StateDir string `yaml:"state_dir"` // run history database
	APIToken string `yaml:"api_token"` // secret reference; without it the API is read-only
	// APIReadToken (secret reference) allows the GET endpoints that open
	// a repository (snapshot listings); api_token allows them too.
	APIReadToken     string `yaml:"api_read_token"`
	MaxPerRepository int    `yaml:"max_per_repository"`
	// AllowedHosts are the host names ("name", any port, or "name:port")
	// the HTTP server answers to besides IP addresses and localhost; a
	// request with another Host header is refused (DNS rebinding).
	AllowedHosts []string `yaml:"allowed_hosts"`
	Positions    `json:"-"`
}

// Load reads and checks a plan file. ${NAME} in values is replaced by
// getenv(NAME) (an unset variable is an error); secrets stay references
// until they are used.
func Load(path string, getenv func(string) string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, b, getenv)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse parses and checks a plan; file names it in errors.
func Parse(file string, b []byte, getenv func(string) string) (*Plan, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, Errors{{Pos: Pos{File: file}, Msg: strings.Join(te.Errors, "; ")}}
		}
		return nil, &Error{Pos: Pos{File: file, Line: yamlLine(err)}, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	d := &decoder{file: file}
	expandEnv(d, &root, getenv)
	p := &Plan{File: file}
	d.decode(&root, reflect.ValueOf(p).Elem())
	// Check what decoded even after errors: all problems at once.
	p.check(d)
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i].Pos, d.errs[j].Pos
			return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
		})
		return nil, d.errs
	}
	return p, nil
}

var yamlLineRe = regexp.MustCompile(`line (\d+)`)

func yamlLine(err error) int {
	m := yamlLineRe.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	var n int
	fmt.Sscanf(m[1], "%d", &n)
	return n
}

func expandEnv(d *decoder, n *yaml.Node, getenv func(string) string) {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := m[2 : len(m)-1]
			v := getenv(name)
			if v == "" {
				d.errorf(n, "set it in the environment of bunker, or use a secret reference like env:NAME for passwords", "environment variable %s is not set", name)
			}
			return v
		})
	}
	for _, c := range n.Content {
		expandEnv(d, c, getenv)
	}
}

// at returns the position of a field (or the struct).
func (p Positions) at(field string) Pos {
	if pos, ok := p[field]; ok {
		return pos
	}
	return p[""]
}

func (d *decoder) fail(p Positions, field, hint, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: p.at(field), Msg: fmt.Sprintf(format, args...), Hint: hint})
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// check validates references and values after decoding.
func (p *Plan) check(d *decoder) {
	repos := map[string]*Repository{}
	var repoNames []string
	for _, r := range p.Repositories {
		switch {
		case !nameRe.MatchString(r.Name):
			d.fail(r.Positions, "name", "letters, digits, . _ -", "repository name %q is not valid", r.Name)
		case repos[r.Name] != nil:
			d.fail(r.Positions, "name", "", "repository %q is defined twice", r.Name)
		}
		repos[r.Name] = r
		repoNames = append(repoNames, r.Name)
		if r.Location == "" {
			d.fail(r.Positions, "", "e.g. location: /srv/backup/repo or s3:https://host/bucket", "repository %q has no location", r.Name)
		}
		checkSecret(d, r.Positions, "password", r.Password, true)
		if r.Site != "" && r.Site != "onsite" && r.Site != "offsite" {
			d.fail(r.Positions, "site", "onsite or offsite", "site %q is not known", r.Site)
		}
		r.check(d)
	}
	jobs := map[string]*Job{}
	var jobNames []string
	for _, j := range p.Jobs {
		switch {
		case !nameRe.MatchString(j.Name):
			d.fail(j.Positions, "name", "letters, digits, . _ -", "job name %q is not valid", j.Name)
		case jobs[j.Name] != nil:
			d.fail(j.Positions, "name", "", "job %q is defined twice", j.Name)
		}
		jobs[j.Name] = j
		jobNames = append(jobNames, j.Name)
		checkRef(d, j.Positions, "repository", j.Repository, repoNames, "repository")
		if j.Schedule == "" {
			d.fail(j.Positions, "", `e.g. schedule: "every 1h" or "30 2 * * *"`, "job %q has no schedule", j.Name)
		} else if s, err := ParseSchedule(j.Schedule); err != nil {
			d.fail(j.Positions, "schedule", `cron (minute hour day month weekday), @daily, or "every 15m"`, "%v", err)
		} else {
			j.schedule = s
		}
		j.Source.check(d)
		for _, c := range j.Copies {
			checkRef(d, c.Positions, "repository", c.Repository, repoNames, "repository")
			if c.Repository == j.Repository && c.Repository != "" {
				d.fail(c.Positions, "repository", "a copy must go to another repository", "job %q copies to its own repository", j.Name)
			}
		}
		j.Hooks.check(d)
		if j.Concurrency < 0 || j.Retries.Attempts < 0 {
			d.fail(j.Positions, "", "", "job %q: concurrency and retries must not be negative", j.Name)
		}
		if j.Concurrency > 1 {
			d.fail(j.Positions, "concurrency", "a job runs one instance at a time; a slot that comes while it runs is skipped", "concurrency %d is not supported", j.Concurrency)
		}
	}
	for _, dr := range p.Drills {
		if !nameRe.MatchString(dr.Name) {
			d.fail(dr.Positions, "name", "letters, digits, . _ -", "drill name %q is not valid", dr.Name)
		}
		checkRef(d, dr.Positions, "job", dr.Job, jobNames, "job")
		if dr.Schedule != "" {
			if s, err := ParseSchedule(dr.Schedule); err != nil {
				d.fail(dr.Positions, "schedule", `cron, @weekly, or "every 7d"`, "%v", err)
			} else {
				dr.schedule = s
			}
		}
		if dr.Pick != "" && dr.Pick != "latest" && dr.Pick != "random" {
			d.fail(dr.Positions, "pick", "latest or random", "pick %q is not known", dr.Pick)
		}
		for _, c := range dr.Validate.Checks {
			if (c.SQL == "") == (c.Command == "") {
				d.fail(c.Positions, "", "", "a check has either sql or command")
			}
			checkEnv(d, c.Positions, c.Env)
		}
	}
	for _, w := range p.Notify.Webhooks {
		if !strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") {
			d.fail(w.Positions, "url", "", "webhook URL %q is not http(s)", w.URL)
		}
		if w.Format != "" && w.Format != "json" && w.Format != "slack" {
			d.fail(w.Positions, "format", "json or slack", "webhook format %q is not known", w.Format)
		}
		checkEvents(d, w.Positions, w.Events)
	}
	for _, sv := range p.Notify.Services {
		checkSecret(d, sv.Positions, "url", sv.URL, true)
		checkEvents(d, sv.Positions, sv.Events)
	}
	for _, h := range p.Notify.Healthchecks {
		checkRef(d, h.Positions, "job", h.Job, jobNames, "job")
		if !strings.HasPrefix(h.URL, "http://") && !strings.HasPrefix(h.URL, "https://") {
			d.fail(h.Positions, "url", "", "healthcheck URL %q is not http(s)", h.URL)
		}
	}
	if e := p.Notify.Email; e != nil {
		if e.SMTP == "" || e.From == "" || len(e.To) == 0 {
			d.fail(e.Positions, "", "", "email needs smtp, from and to")
		}
		checkSecret(d, e.Positions, "password", e.Password, false)
	}
	checkSecret(d, p.Daemon.Positions, "api_token", p.Daemon.APIToken, false)
	checkSecret(d, p.Daemon.Positions, "api_read_token", p.Daemon.APIReadToken, false)
	for _, h := range p.Daemon.AllowedHosts {
		if !hostRe.MatchString(h) {
			d.fail(p.Daemon.Positions, "allowed_hosts", "a host name as browsers send it, e.g. bunker.example.com or bunker.example.com:8080, without scheme or path", "allowed host %q is not a host name", h)
		}
	}
}

func (h Hooks) check(d *decoder) {
	for _, h := range slices.Concat(h.Before, h.After, h.OnFailure) {
		if strings.TrimSpace(h.Command) == "" {
			d.fail(h.Positions, "", "", "hook without a command")
		}
		checkEnv(d, h.Positions, h.Env)
	}
}

// check validates a repository's backend environment, limits, hooks and
// schedules.
func (r *Repository) check(d *decoder) {
	names := make([]string, 0, len(r.Env))
	for k := range r.Env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, at := r.Env[k], "env."+k
		if !envNameRe.MatchString(k) {
			d.fail(r.Positions, at, "letters, digits and _, not starting with a digit", "env: %q is not a variable name", k)
			continue
		}
		if kind, ref, ok := strings.Cut(v, ":"); ok && secretKinds[kind] {
			if ref == "" {
				d.fail(r.Positions, at, "env:NAME, file:/path or command:CMD", "env %s: the %s: reference names nothing", k, kind)
			}
			continue
		}
		if v != "" && LooksSecret(k) {
			d.fail(r.Positions, at, "write env:NAME, file:/path or command:CMD, never the secret itself",
				"env %s is written in clear, and its name says it holds a secret", k)
		}
	}
	for _, l := range []struct{ key, v string }{{"limit_upload", r.LimitUpload}, {"limit_download", r.LimitDownload}} {
		if _, err := units.ParseRate(l.v); err != nil {
			d.fail(r.Positions, l.key, "bytes per second: 800K, 5M, 1.5G, or a number of KiB; 0 for none", "%s: %v", l.key, err)
		}
	}
	r.Hooks.check(d)
	if c := r.Check; c != nil {
		c.schedule = repoSchedule(d, c.Positions, c.Schedule, "check", r.Name)
		if c.ReadDataSubset != "" {
			if _, err := units.ParseSubset(c.ReadDataSubset); err != nil {
				d.fail(c.Positions, "read_data_subset", "N% of the packs at random, a size such as 500M, or the n-th of t slices as n/t",
					"read_data_subset %q: %v", c.ReadDataSubset, err)
			}
		}
	}
	if pr := r.Prune; pr != nil {
		pr.schedule = repoSchedule(d, pr.Positions, pr.Schedule, "prune", r.Name)
		if _, err := pr.MaxUnusedFraction(); err != nil {
			d.fail(pr.Positions, "max_unused", "e.g. 5% (the default), 0% to repack every partly used pack, or unlimited", "%v", err)
		}
	}
}

// repoSchedule parses the schedule of a repository's check or prune,
// which must have one.
func repoSchedule(d *decoder, p Positions, s, what, repo string) Schedule {
	if s == "" {
		d.fail(p, "", `e.g. schedule: "@weekly" or "every 7d"`, "the %s of repository %q has no schedule", what, repo)
		return nil
	}
	sch, err := ParseSchedule(s)
	if err != nil {
		d.fail(p, "schedule", `cron (minute hour day month weekday), @weekly, or "every 7d"`, "%v", err)
		return nil
	}
	return sch
}

// secretKinds are the kinds of secret reference.
var secretKinds = map[string]bool{"env": true, "file": true, "command": true}

// secretWords are what the names of variables that hold secrets contain
// (AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_KEY, RESTIC_PASSWORD, …).
var secretWords = []string{"KEY", "SECRET", "PASSWORD", "TOKEN", "CREDENTIAL"}

// LooksSecret reports whether an environment variable's name says it
// holds a secret: a plan must not write its value in clear.
func LooksSecret(name string) bool {
	u := strings.ToUpper(name)
	return slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(u, w) })
}

// IsSecretRef reports whether v is a secret reference (env:NAME,
// file:/path, command:CMD) rather than a literal value.
func IsSecretRef(v string) bool {
	kind, ref, ok := strings.Cut(v, ":")
	return ok && ref != "" && secretKinds[kind]
}

// hostRe is a host name with an optional port.
var hostRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?$`)

// eventKinds are the notification events a webhook may ask for.
var eventKinds = []string{"failure", "rpo", "rto", "drill", "recovery", "321"}

var sourceTypes = []string{"files", "stdin", "postgres", "mysql", "mongodb", "kubernetes"}

func (s *Source) check(d *decoder) {
	if s.Type != "files" {
		for _, k := range []struct {
			key string
			set bool
		}{{"exclude_file", len(s.ExcludeFile) > 0}, {"exclude_caches", s.ExcludeCaches}, {"exclude_if_present", len(s.ExcludeIfPresent) > 0},
			{"one_file_system", s.OneFileSystem}, {"files_from", len(s.FilesFrom) > 0}} {
			if k.set {
				d.fail(s.Positions, k.key, "it applies to files sources", "%s is not a key of a %s source", k.key, s.Type)
			}
		}
	}
	switch s.Type {
	case "files":
		if len(s.Paths) == 0 && len(s.FilesFrom) == 0 {
			d.fail(s.Positions, "", "", "a files source needs paths or files_from")
		}
	case "stdin":
		if len(s.Command) == 0 {
			d.fail(s.Positions, "", "", "a stdin source needs a command")
		}
	case "postgres", "mysql", "mongodb":
		checkSecret(d, s.Positions, "dsn", s.DSN, false)
	case "kubernetes":
		if s.NodeRoot != "" && !strings.HasPrefix(s.NodeRoot, "/") {
			d.fail(s.Positions, "node_root", "", "node_root %q is not an absolute path", s.NodeRoot)
		}
	case "":
		d.fail(s.Positions, "", "one of "+strings.Join(sourceTypes, ", "), "the source has no type")
	default:
		hint := "one of " + strings.Join(sourceTypes, ", ")
		if c := closest(s.Type, sourceTypes); c != "" {
			hint = "did you mean " + c + "?"
		}
		d.fail(s.Positions, "type", hint, "source type %q is not known", s.Type)
	}
}

// checkEvents refuses event kinds a notification cannot ask for.
func checkEvents(d *decoder, p Positions, events []string) {
	for _, ev := range events {
		if !slices.Contains(eventKinds, ev) {
			hint := "one of " + strings.Join(eventKinds, ", ")
			if c := closest(ev, eventKinds); c != "" {
				hint = "did you mean " + c + "?"
			}
			d.fail(p, "events", hint, "event %q is not known", ev)
		}
	}
}

func checkRef(d *decoder, p Positions, field, name string, known []string, what string) {
	if name == "" {
		d.fail(p, "", "", "no %s given", what)
		return
	}
	if slices.Contains(known, name) {
		return
	}
	hint := "defined: " + strings.Join(known, ", ")
	if c := closest(name, known); c != "" {
		hint = "did you mean " + c + "?"
	}
	if len(known) == 0 {
		hint = "none is defined"
	}
	d.fail(p, field, hint, "%s %q is not defined", what, name)
}

var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkEnv accepts NAME and NAME=VALUE.
func checkEnv(d *decoder, p Positions, env []string) {
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		if !envNameRe.MatchString(name) {
			d.fail(p, "env", "NAME to pass bunker's NAME through, or NAME=VALUE", "env entry %q does not start with a variable name", name)
		}
	}
}

// checkSecret accepts env:NAME, file:/path and command:CMD.
func checkSecret(d *decoder, p Positions, field, ref string, required bool) {
	if ref == "" {
		if required {
			d.fail(p, "", "e.g. "+field+": env:BUNKER_PASSWORD or file:/etc/bunker/pw", "no %s given", field)
		}
		return
	}
	kind, val, ok := strings.Cut(ref, ":")
	if !ok || val == "" || (kind != "env" && kind != "file" && kind != "command") {
		d.fail(p, field, "write env:NAME, file:/path or command:CMD, never the secret itself", "%s is not a secret reference", field)
	}
}

// ResolveSecret returns the secret a reference points to.
func ResolveSecret(ref string, getenv func(string) string, run func(cmd string) (string, error)) (string, error) {
	kind, val, _ := strings.Cut(ref, ":")
	switch kind {
	case "env":
		v := getenv(val)
		if v == "" {
			return "", fmt.Errorf("environment variable %s is not set", val)
		}
		return v, nil
	case "file":
		b, err := os.ReadFile(val)
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case "command":
		return run(val)
	}
	return "", fmt.Errorf("not a secret reference")
}

// Job returns the job with the given name.
func (p *Plan) Job(name string) *Job {
	for _, j := range p.Jobs {
		if j.Name == name {
			return j
		}
	}
	return nil
}

// FindJob returns the job with the given name, or an error that names
// the plan's jobs.
func (p *Plan) FindJob(name string) (*Job, error) {
	if j := p.Job(name); j != nil {
		return j, nil
	}
	var names []string
	for _, j := range p.Jobs {
		names = append(names, j.Name)
	}
	return nil, fmt.Errorf("plan %s has no job %q (jobs: %s)", p.File, name, strings.Join(names, ", "))
}

// DrillsFor returns the drills a name asks for: the drill of that name
// and every drill of the job of that name; a job without drills gets a
// plain restore check (NAME-check).
func (p *Plan) DrillsFor(name string) ([]*Drill, error) {
	var drills []*Drill
	for _, d := range p.Drills {
		if d.Name == name || d.Job == name {
			drills = append(drills, d)
		}
	}
	if len(drills) == 0 {
		if p.Job(name) == nil {
			return nil, fmt.Errorf("plan %s has no drill or job %q", p.File, name)
		}
		drills = []*Drill{{Name: name + "-check", Job: name}}
	}
	return drills, nil
}

// Repository returns the repository with the given name.
func (p *Plan) Repository(name string) *Repository {
	for _, r := range p.Repositories {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// ScheduleOf returns the job's parsed schedule.
func (j *Job) ScheduleOf() Schedule { return j.schedule }

// ScheduleOf returns the drill's parsed schedule (nil: on demand only).
func (d *Drill) ScheduleOf() Schedule { return d.schedule }

// Discover looks for a plan where borgmatic users look for their
// configuration: plan.yaml (or .yml) in $XDG_CONFIG_HOME/bunker (else
// ~/.config/bunker), then in systemDir. It returns the first regular file
// found, "" when none is, and every path it tried (for the message).
func Discover(getenv func(string) string, systemDir string) (string, []string) {
	var dirs []string
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		dirs = append(dirs, filepath.Join(x, "bunker"))
	} else if h := getenv("HOME"); h != "" {
		dirs = append(dirs, filepath.Join(h, ".config", "bunker"))
	}
	dirs = append(dirs, systemDir)
	var tried []string
	for _, d := range dirs {
		for _, name := range []string{"plan.yaml", "plan.yml"} {
			p := filepath.Join(d, name)
			tried = append(tried, p)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p, tried
			}
		}
	}
	return "", tried
}
