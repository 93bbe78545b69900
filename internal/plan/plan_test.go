package plan

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bunkerbackup/bunker/internal/timespec"
)

func noEnv(string) string { return "" }

func TestExample(t *testing.T) {
	p, err := Load("testdata/example.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Repositories) != 2 || len(p.Jobs) != 2 || len(p.Drills) != 1 {
		t.Fatalf("%+v", p)
	}
	home := p.Job("home")
	if home.RPO != 2*time.Hour || home.Jitter != 5*time.Minute || home.Copies[0].Retention.KeepMonthly != 12 || !home.Retention.Prune {
		t.Errorf("home: %+v", home)
	}
	if home.Hooks.Before[0].Timeout != time.Minute || home.Source.Exclude[1] != "/home/*/.cache" {
		t.Errorf("hooks/source: %+v %+v", home.Hooks, home.Source)
	}
	now := time.Date(2026, 11, 26, 10, 17, 0, 0, time.UTC)
	if next := home.ScheduleOf().Next(now); !next.Equal(time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("every 1h after 10:17: %v", next)
	}
	if next := p.Job("shop-db").ScheduleOf().Next(now.In(time.Local)); next.Hour() != 2 || next.Minute() != 30 {
		t.Errorf("cron: %v", next)
	}
	if pos := home.Positions.at("rpo"); pos.Line != 30 || pos.Column != 10 {
		t.Errorf("rpo position %v", pos)
	}
	if !p.Repository("offsite").Immutable || p.Daemon.Listen != "127.0.0.1:9876" {
		t.Errorf("%+v %+v", p.Repository("offsite"), p.Daemon)
	}
}

func TestErrors(t *testing.T) {
	base, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"unknown key with hint", "    jitter: 5m", "    jiter: 5m", `example.yaml:24:5: unknown key "jiter" in job (did you mean jitter?)`},
		{"bad duration", "    rpo: 2h", "    rpo: two hours", `example.yaml:30:10: "two hours" is not a duration`},
		{"dangling repository", "    repository: local\n    copies", "    repository: locale\n    copies", `example.yaml:25:17: repository "locale" is not defined (did you mean local?)`},
		{"secret in clear", "password: env:BUNKER_PASSWORD", "password: hunter2", `example.yaml:6:15: password is not a secret reference (write env:NAME, file:/path or command:CMD, never the secret itself)`},
		{"bad schedule", `schedule: "30 2 * * *"`, `schedule: "30 25 * * *"`, `example.yaml:44:15: schedule "30 25 * * *"`},
		{"wrong type", "prune: true", "prune: maybe", `expected a true or false, found "maybe"`},
		{"bad source type", "type: postgres", "type: postgress", `source type "postgress" is not known (did you mean postgres?)`},
		{"copy to itself", "      - repository: offsite\n", "      - repository: local\n", `job "home" copies to its own repository`},
		{"drill job", "    job: shop-db", "    job: shop", `job "shop" is not defined`},
		{"duplicate job", "  - name: shop-db", "  - name: home", `job "home" is defined twice`},
		{"yaml syntax", "    pick: random", "    pick: [random", `example.yaml:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(string(base), tc.from, tc.to, 1)
			if src == string(base) {
				t.Fatalf("%q not found in the example", tc.from)
			}
			_, err := Parse("example.yaml", []byte(src), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	src := "repositories:\n  - name: r\n    location: ${REPO_DIR}/repo\n    password: env:PW\n"
	p, err := Parse("p.yaml", []byte(src), func(k string) string { return map[string]string{"REPO_DIR": "/data"}[k] })
	if err != nil || p.Repositories[0].Location != "/data/repo" {
		t.Fatalf("%v %+v", err, p)
	}
	_, err = Parse("p.yaml", []byte(src), noEnv)
	if err == nil || !strings.Contains(err.Error(), "p.yaml:3:15: environment variable REPO_DIR is not set") {
		t.Fatalf("%v", err)
	}
}

func TestParseSchedule(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 17, 30, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		next time.Time
	}{
		{"every 15m", time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC)},
		{"every 1d", time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)},
		{"CRON_TZ=UTC 0 3 * * *", time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)},
		{"CRON_TZ=UTC @hourly", time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)},
	} {
		s, err := ParseSchedule(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := s.Next(at); !got.Equal(tc.next) {
			t.Errorf("%s: next %v, want %v", tc.in, got, tc.next)
		}
	}
	for _, bad := range []string{"", "every", "every 10s", "every -5m", "61 * * * *", "* * *"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/example.yaml")
	f.Add(b)
	f.Add([]byte("jobs: [{name: a, schedule: every 1h}]"))
	f.Add([]byte("a: &x [*x]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse("fuzz.yaml", b, noEnv)
	})
}

func TestKubernetesSource(t *testing.T) {
	base, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	from := "      type: files\n      paths: [/home, /etc]\n      exclude: [\"*.tmp\", /home/*/.cache]\n"
	to := "      type: kubernetes\n      context: prod\n      include_namespaces: [shop, \"team-*\"]\n      volumes: true\n      node_root: /host\n"
	src := strings.Replace(string(base), from, to, 1)
	if src == string(base) {
		t.Fatal("files source not found in the example")
	}
	p, err := Parse("example.yaml", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := p.Jobs[0].Source
	if s.Type != "kubernetes" || s.Context != "prod" || len(s.IncludeNamespaces) != 2 || !s.Volumes || s.NodeRoot != "/host" {
		t.Errorf("source = %+v", s)
	}
	bad := strings.Replace(src, "node_root: /host", "node_root: host", 1)
	if _, err := Parse("example.yaml", []byte(bad), noEnv); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("relative node_root: %v", err)
	}
}

// TestAllowedHosts: daemon.allowed_hosts takes host names with an
// optional port, never URLs.
func TestAllowedHosts(t *testing.T) {
	src := "daemon:\n  allowed_hosts: [bunker.example.com, \"ops.example.com:8443\"]\n"
	p, err := Parse("p.yaml", []byte(src), noEnv)
	if err != nil || len(p.Daemon.AllowedHosts) != 2 {
		t.Fatalf("%v %+v", err, p)
	}
	for _, bad := range []string{"http://bunker.example.com", "bunker.example.com/", "*.example.com", "a b", ""} {
		_, err := Parse("p.yaml", []byte("daemon:\n  allowed_hosts: [\""+bad+"\"]\n"), noEnv)
		if err == nil || !strings.Contains(err.Error(), "is not a host name") {
			t.Errorf("allowed host %q: %v", bad, err)
		}
	}
}

// TestParseDurationRange: plan durations never wrap. A value beyond what
// a time.Duration holds was converted to an unspecified (on amd64, the
// most negative) value, and sums of parts could wrap past the "is
// negative" check.
func TestParseDurationRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "90s", want: 90 * time.Second},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "2w1d", want: 15 * 24 * time.Hour},
		{in: "106751d", want: 106751 * 24 * time.Hour},
		{in: "2562047h47m", want: 2562047*time.Hour + 47*time.Minute},
		{in: "110000d", err: "too long"},
		{in: "15300w", err: "too long"},
		{in: "99999999999999999999999999999999d", err: "too long"},
		{in: "9999999999h", err: "too long"},
		{in: "2562047h48m", err: "too long"},
		{in: "100000d100000d", err: "too long"},
		{in: "-5m", err: "negative"},
		{in: "1.2.3h", err: "not a duration"},
		{in: ".d", err: "not a duration"},
	} {
		got, err := timespec.ParseDuration(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseDuration(%q) = %v, %v; want an error saying %q", tc.in, got, err, tc.err)
		}
	}
}

// TestHookEnv: a hook's env takes NAME and NAME=VALUE entries.
func TestHookEnv(t *testing.T) {
	src := "repositories: [{name: r, location: /r, password: env:P}]\njobs:\n  - name: j\n    source: {type: files, paths: [/a]}\n    schedule: every 1h\n    repository: r\n    hooks:\n      before: [{command: x, env: [PGPASSWORD, \"A=b=c\"]}]\n"
	p, err := Parse("p.yaml", []byte(src), noEnv)
	if err != nil || len(p.Jobs[0].Hooks.Before[0].Env) != 2 {
		t.Fatalf("%v %+v", err, p)
	}
	bad := strings.Replace(src, `"A=b=c"`, `"1A=b"`, 1)
	if _, err := Parse("p.yaml", []byte(bad), noEnv); err == nil || !strings.Contains(err.Error(), `env entry "1A" does not start with a variable name`) {
		t.Errorf("bad env entry: %v", err)
	}
}

// TestNegativeCountsRefused: no count in a plan means anything when
// negative; keep_last: -5 used to reach forget as --keep-last -5.
func TestNegativeCountsRefused(t *testing.T) {
	base, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to string }{
		{"keep_hourly: 24", "keep_hourly: -5"},
		{"keep_daily: 30", "keep_daily: -1"},
		{"rpo: 2h", "rpo: -2h"},
		{"rpo: 2h", "rpo: 110000d"},
	} {
		src := strings.Replace(string(base), tc.from, tc.to, 1)
		if src == string(base) {
			t.Fatalf("%q not found in the example", tc.from)
		}
		_, err := Parse("example.yaml", []byte(src), noEnv)
		if err == nil || !strings.Contains(err.Error(), "example.yaml:") {
			t.Errorf("%s: error %v, want one with its position", tc.to, err)
		}
	}
}

// TestDurationGrammar: a plan's durations take the timespec grammar (1y,
// 6mo, restic's 1y6m), and its keep_within refuses an m that restic
// would read as months and Go as minutes, with a hint (issue 16).
func TestDurationGrammar(t *testing.T) {
	base, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const retention = "retention: {keep_hourly: 24, keep_daily: 7, prune: true}"
	edit := func(pairs ...string) []byte {
		src := string(base)
		for i := 0; i+1 < len(pairs); i += 2 {
			if !strings.Contains(src, pairs[i]) {
				t.Fatalf("%q not found in the example", pairs[i])
			}
			src = strings.Replace(src, pairs[i], pairs[i+1], 1)
		}
		return []byte(src)
	}
	p, err := Parse("example.yaml", edit(retention, "retention: {keep_within: 1y6m}", "rpo: 2h", "rpo: 1y", "jitter: 5m", "jitter: 1h30m"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	home := p.Job("home")
	if day := 24 * time.Hour; home.Retention.KeepWithin != 365*day+6*30*day || home.RPO != 365*day || home.Jitter != 90*time.Minute {
		t.Errorf("keep_within %v, rpo %v, jitter %v", home.Retention.KeepWithin, home.RPO, home.Jitter)
	}
	_, err = Parse("example.yaml", edit(retention, "retention: {keep_within: 6m}"), noEnv)
	if want := `"6m" is not a duration: 6m is ambiguous: write 6min for minutes or 6mo for months`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("keep_within: 6m: %v\nwant an error saying %s", err, want)
	}
	// restic's keep-within-<period> keys take the same grammar.
	p, err = Parse("example.yaml", edit(retention, "retention: {keep_within_daily: 7d, keep_within_monthly: 1y6m}"), noEnv)
	if r := p.Job("home").Retention; err != nil || r.KeepWithinDaily != 7*24*time.Hour || r.KeepWithinMonthly != 545*24*time.Hour || r.Empty() {
		t.Errorf("keep_within_daily: 7d, keep_within_monthly: 1y6m: %v %+v", err, r)
	}
	_, err = Parse("example.yaml", edit(retention, "retention: {keep_within_weekly: 3m}"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "3m is ambiguous") {
		t.Errorf("keep_within_weekly: 3m: %v", err)
	}
	// Elsewhere a lone m is minutes, as it always was.
	p, err = Parse("example.yaml", edit(retention, "retention: {keep_within: 6mo}", "rpo: 2h", "rpo: 45m"), noEnv)
	if err != nil || p.Job("home").RPO != 45*time.Minute || p.Job("home").Retention.KeepWithin != 180*24*time.Hour {
		t.Errorf("rpo: 45m, keep_within: 6mo: %v %v", err, p)
	}
}

func TestFindJobAndDrillsFor(t *testing.T) {
	p := &Plan{File: "plan.yaml", Jobs: []*Job{{Name: "home"}, {Name: "db"}},
		Drills: []*Drill{{Name: "db-weekly", Job: "db"}, {Name: "db-sql", Job: "db"}}}
	if j, err := p.FindJob("db"); err != nil || j.Name != "db" {
		t.Fatalf("FindJob(db) = %v, %v", j, err)
	}
	if _, err := p.FindJob("nope"); err == nil || !strings.Contains(err.Error(), "jobs: home, db") {
		t.Errorf("FindJob(nope) error %v, want one naming the jobs", err)
	}
	for name, want := range map[string][]string{"db": {"db-weekly", "db-sql"}, "db-sql": {"db-sql"}, "home": {"home-check"}} {
		ds, err := p.DrillsFor(name)
		var got []string
		for _, d := range ds {
			got = append(got, d.Name)
		}
		if err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("DrillsFor(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := p.DrillsFor("nope"); err == nil {
		t.Error("DrillsFor(nope): no error")
	}
}

func TestDiscover(t *testing.T) {
	xdg, sys := t.TempDir(), t.TempDir()
	env := func(k string) string { return map[string]string{"XDG_CONFIG_HOME": xdg, "HOME": "/nonexistent"}[k] }
	if p, tried := Discover(env, sys); p != "" || len(tried) != 4 {
		t.Fatalf("Discover in empty dirs = %q, tried %v", p, tried)
	}
	if err := os.WriteFile(filepath.Join(sys, "plan.yml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if p, _ := Discover(env, sys); p != filepath.Join(sys, "plan.yml") {
		t.Errorf("Discover = %q, want the system plan", p)
	}
	if err := os.MkdirAll(filepath.Join(xdg, "bunker"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(xdg, "bunker", "plan.yaml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if p, _ := Discover(env, sys); p != filepath.Join(xdg, "bunker", "plan.yaml") {
		t.Errorf("Discover = %q, want the user's plan first", p)
	}
}

// TestRepositoryKeys loads the plan that uses every per-repository key.
func TestRepositoryKeys(t *testing.T) {
	p, err := Load("testdata/repositories.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	local, off := p.Repository("local"), p.Repository("offsite")
	if local.LimitUpload != "800" || local.Env != nil || !local.PrunesOnSchedule() || local.Check.ReadDataSubset != "" {
		t.Errorf("local: %+v", local)
	}
	if f, err := local.Prune.MaxUnusedFraction(); err != nil || f != 0.05 {
		t.Errorf("default max_unused: %v, %v", f, err)
	}
	if f, err := off.Prune.MaxUnusedFraction(); err != nil || f != 0.10 {
		t.Errorf("max_unused 10%%: %v, %v", f, err)
	}
	if off.Env["AWS_REGION"] != "eu-central-1" || off.Env["AWS_SECRET_ACCESS_KEY"] != "file:/etc/bunker/offsite.key" || len(off.Env) != 5 {
		t.Errorf("env: %v", off.Env)
	}
	if off.LimitUpload != "5M" || off.LimitDownload != "20M" || off.Check.ReadDataSubset != "5%" {
		t.Errorf("offsite: %+v %+v", off, off.Check)
	}
	if off.Hooks.Before[0].Timeout != time.Minute || len(off.Hooks.After) != 1 || len(off.Hooks.OnFailure) != 1 {
		t.Errorf("hooks: %+v", off.Hooks)
	}
	now := time.Date(2026, 11, 26, 10, 17, 0, 0, time.UTC)
	if next := off.Prune.ScheduleOf().Next(now); !next.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("prune every 7d after %v: %v", now, next)
	}
	if next := off.Check.ScheduleOf().Next(now.In(time.Local)); next.Weekday() != time.Saturday || next.Hour() != 3 || next.Minute() != 30 {
		t.Errorf("check: %v", next)
	}
	if local.Check.ScheduleOf() == nil || local.Prune.ScheduleOf() == nil {
		t.Error("local's schedules were not parsed")
	}
	if pos := off.Positions.at("env.AWS_REGION"); pos.Line != 24 || pos.Column != 19 {
		t.Errorf("env entry position %v", pos)
	}
}

// TestRepositoryKeyErrors: each bad value of a per-repository key is
// reported where it is, with a hint.
func TestRepositoryKeyErrors(t *testing.T) {
	base, err := os.ReadFile("testdata/repositories.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"secret literal", "AWS_SECRET_ACCESS_KEY: file:/etc/bunker/offsite.key", "AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI",
			`r.yaml:22:30: env AWS_SECRET_ACCESS_KEY is written in clear, and its name says it holds a secret (write env:NAME, file:/path or command:CMD, never the secret itself)`},
		{"token literal", "AWS_SESSION_TOKEN: command:vault read -field=token aws/sts/backup", "AWS_SESSION_TOKEN: abc",
			`r.yaml:23:26: env AWS_SESSION_TOKEN is written in clear`},
		{"lower-case secret name", "BUNKER_S3_STORAGE_CLASS: STANDARD_IA", "my_api_key: abc", `r.yaml:25:19: env my_api_key is written in clear`},
		{"empty reference", "AWS_ACCESS_KEY_ID: env:OFFSITE_KEY_ID", "AWS_ACCESS_KEY_ID: 'env:'", `r.yaml:21:26: env AWS_ACCESS_KEY_ID: the env: reference names nothing`},
		{"bad variable name", "AWS_REGION: eu-central-1", "1REGION: eu-central-1", `r.yaml:24:16: env: "1REGION" is not a variable name`},
		{"env twice", "AWS_REGION: eu-central-1", "AWS_REGION: eu-central-1\n      AWS_REGION: us-east-1", `r.yaml:25:7: "AWS_REGION" is set twice`},
		{"env not a mapping", "    env:\n      AWS_ACCESS_KEY_ID", "    env: [A]\n    xenv:\n      AWS_ACCESS_KEY_ID", `r.yaml:20:10: expected a mapping, found a list`},
		{"bad upload rate", "limit_upload: 5M", "limit_upload: fast", `r.yaml:26:19: limit_upload: "fast" is not a rate`},
		{"bad download rate", "limit_download: 20M", "limit_download: -1M", `r.yaml:27:21: limit_download: "-1M" is not a rate`},
		{"hook without command", "        - command: wg-quick down offsite", "        - timeout: 1m", `r.yaml:33:11: hook without a command`},
		{"hook env", "          timeout: 1m\n", "          timeout: 1m\n          env: [\"=x\"]\n", `env entry "" does not start with a variable name`},
		{"unknown hook stage", "      on_failure:", "      on_falure:", `unknown key "on_falure" in hooks (did you mean on_failure?)`},
		{"bad check schedule", `schedule: "30 3 * * 6"`, `schedule: "30 3 * * 8"`, `r.yaml:37:17: schedule "30 3 * * 8": end of range (8) above maximum (6)`},
		{"check without schedule", "    check:\n      schedule: \"@weekly\"", "    check:\n      read_data_subset: 1/4", `r.yaml:14:7: the check of repository "local" has no schedule`},
		{"bad subset", "read_data_subset: 5%", "read_data_subset: 150%", `r.yaml:38:25: read_data_subset "150%": want a percentage in (0,100] (N% of the packs at random`},
		{"bad slice", "read_data_subset: 5%", "read_data_subset: 5/4", `read_data_subset "5/4": want N% or n/t with 1 <= n <= t`},
		{"unknown check key", "read_data_subset: 5%", "read_data_subst: 5%", `r.yaml:38:7: unknown key "read_data_subst" in repo check (did you mean read_data_subset?)`},
		{"bad prune schedule", "schedule: every 7d", "schedule: every 10s", `r.yaml:40:17: schedule "every 10s": run at most once a minute`},
		{"prune without schedule", "    prune:\n      schedule: \"0 4 * * 0\"", "    prune:\n      max_unused: 1%", `r.yaml:12:7: the prune of repository "local" has no schedule`},
		{"bad max_unused", "max_unused: 10%", "max_unused: lots", `r.yaml:41:19: max_unused "lots": want a percentage from 0% to 100%, or unlimited`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(string(base), tc.from, tc.to, 1)
			if src == string(base) {
				t.Fatalf("%q not found in the plan", tc.from)
			}
			_, err := Parse("r.yaml", []byte(src), noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
		})
	}
	// An empty literal hides bunker's variable from the backend, and
	// holds no secret; "unlimited" leaves packs unrepacked.
	src := strings.Replace(string(base), "AWS_SESSION_TOKEN: command:vault read -field=token aws/sts/backup", `AWS_SESSION_TOKEN: ""`, 1)
	src = strings.Replace(src, "max_unused: 10%", "max_unused: unlimited", 1)
	p, err := Parse("r.yaml", []byte(src), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := p.Repository("offsite").Prune.MaxUnusedFraction(); f != -1 {
		t.Errorf("unlimited: %v", f)
	}
}

// TestPlansDocumentsEveryKey: every key a plan accepts is named in
// docs/PLANS.md (a new key comes with its documentation).
func TestPlansDocumentsEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/PLANS.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(tt reflect.Type, path string) {
		for tt.Kind() == reflect.Pointer || tt.Kind() == reflect.Slice || tt.Kind() == reflect.Map {
			tt = tt.Elem()
		}
		if tt.Kind() != reflect.Struct || seen[tt] {
			return
		}
		seen[tt] = true
		for i := 0; i < tt.NumField(); i++ {
			f := tt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !regexp.MustCompile(`\b` + regexp.QuoteMeta(name) + `\b`).Match(doc) {
				t.Errorf("docs/PLANS.md does not name the key %s.%s", path, name)
			}
			walk(f.Type, path+"."+name)
		}
	}
	walk(reflect.TypeOf(Plan{}), "plan")
	if len(seen) < 10 {
		t.Fatalf("only %d sections walked", len(seen))
	}
}
