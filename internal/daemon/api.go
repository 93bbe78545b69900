package daemon

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bunkerbackup/bunker/internal/monitor"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/state"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// APIStatus is GET /api/v1/status.
type APIStatus struct {
	Time    time.Time        `json:"time"`
	Status  *monitor.Status  `json:"status,omitempty"`
	Jobs    []APIJob         `json:"jobs"`
	Drills  []APIDrill       `json:"drills"`
	Running []string         `json:"running"`
	Alerts  map[string]int64 `json:"alerts"` // active alert → since (Unix seconds)

	// Repositories are the plan's repositories that have a check or a
	// prune schedule.
	Repositories []APIRepository `json:"repositories"`
}

// APIJob is a job with its last runs.
type APIJob struct {
	Name        string     `json:"name"`
	Schedule    string     `json:"schedule"`
	NextRun     time.Time  `json:"next_run"`
	Repository  string     `json:"repository"`
	Copies      []string   `json:"copies"`
	RPOSeconds  float64    `json:"rpo_seconds,omitempty"`
	RTOSeconds  float64    `json:"rto_seconds,omitempty"`
	LastRun     *state.Run `json:"last_run,omitempty"`
	LastSuccess *state.Run `json:"last_success,omitempty"`
}

// APIDrill is a drill with its last runs.
type APIDrill struct {
	Name        string          `json:"name"`
	Job         string          `json:"job"`
	Schedule    string          `json:"schedule,omitempty"`
	RTOSeconds  float64         `json:"rto_seconds,omitempty"`
	LastRun     *state.Run      `json:"last_run,omitempty"`
	LastSuccess *state.Run      `json:"last_success,omitempty"`
	History     []APIDrillPoint `json:"history"`
}

// APIRepository is a repository with its scheduled check and prune.
type APIRepository struct {
	Name  string       `json:"name"`
	Check *APIRepoTask `json:"check,omitempty"`
	Prune *APIRepoTask `json:"prune,omitempty"`
}

// APIRepoTask is a repository's check or prune with its last runs.
type APIRepoTask struct {
	Schedule    string     `json:"schedule"`
	NextRun     time.Time  `json:"next_run"`
	LastRun     *state.Run `json:"last_run,omitempty"`
	LastSuccess *state.Run `json:"last_success,omitempty"`
}

// APIDrillPoint is one drill run for the RTO chart.
type APIDrillPoint struct {
	Time           time.Time `json:"time"`
	Result         string    `json:"result"`
	RestoreSeconds float64   `json:"restore_seconds"`
}

// HandlerOptions configure the HTTP API.
type HandlerOptions struct {
	// Token allows everything: the runs (POST), and what ReadToken
	// allows. Empty: no run can be started through the API.
	Token string
	// ReadToken allows every GET that reveals state: the status, the
	// run history and logs, the size history, /metrics and the snapshot
	// listings. Give it to dashboards and monitoring that only look.
	//
	// With either token set, each of those GETs needs one of them
	// ("Authorization: Bearer TOKEN"): without it the answer is 401,
	// decided before any state is read or any repository opened. With
	// neither set, the daemon's own state (status, runs, logs, sizes,
	// metrics) is served to anyone who reaches the listener — the CLI
	// allows that only on a loopback address or when told to — and the
	// snapshot listings, which open repositories (a password command
	// and a key derivation each), answer 403.
	ReadToken string
	// Extra serves everything else: the dashboard's page and assets,
	// which hold no data.
	Extra http.Handler
	// AllowedHosts are host names (any port) or name:port the daemon
	// answers to besides IP addresses and localhost, on top of the
	// plan's daemon.allowed_hosts. A request for any other Host gets 421:
	// see hostGuard.
	AllowedHosts []string
}

// Handler serves /healthz, /metrics and the JSON API, and o.Extra, to
// requests whose Host header the daemon answers to (hostGuard), each
// endpoint behind the token HandlerOptions says.
func (d *Daemon) Handler(o HandlerOptions) http.Handler {
	a := newAuth(o.Token, o.ReadToken)
	// view guards a GET that reveals the daemon's state: open when no
	// token is configured, else the read or the run token.
	view := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if a.configured() && !a.check(w, r, "", a.read, a.run) {
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	if m := d.o.Metrics; m != nil {
		mux.Handle("GET /metrics", view(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("GET /api/v1/status", view(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, d.apiStatus())
	})))
	mux.Handle("GET /api/v1/runs", view(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if limit <= 0 || limit > 1000 {
			limit = 100
		}
		runs, err := d.o.Store.Runs(r.URL.Query().Get("job"), limit)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		for _, run := range runs {
			run.Log = ""
		}
		if runs == nil {
			runs = []*state.Run{}
		}
		writeJSON(w, http.StatusOK, runs)
	})))
	mux.Handle("GET /api/v1/runs/{id}", view(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		run, err := d.o.Store.Run(r.PathValue("id"))
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, run)
	})))
	mux.HandleFunc("GET /api/v1/snapshots", func(w http.ResponseWriter, r *http.Request) {
		if !a.check(w, r, "listing snapshots opens the repository: set daemon.api_read_token (or daemon.api_token) in the plan", a.read, a.run) {
			return
		}
		repo := r.URL.Query().Get("repository")
		p := d.Plan()
		if p.Repository(repo) == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no repository " + strconv.Quote(repo) + " in the plan"})
			return
		}
		list, err := d.snapshots(r.Context(), p, repo)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		if list == nil {
			list = []SnapshotInfo{}
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.Handle("GET /api/v1/sizes/{repo}", view(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pts, err := d.o.Store.Sizes(r.PathValue("repo"), time.Time{})
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		if pts == nil {
			pts = []state.SizePoint{}
		}
		writeJSON(w, http.StatusOK, pts)
	})))
	run := func(trigger func(string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !a.check(w, r, "the API is read-only: set daemon.api_token in the plan to allow runs", a.run) {
				return
			}
			if err := trigger(r.PathValue("name")); err != nil {
				writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
				return
			}
			writeJSON(w, http.StatusAccepted, map[string]string{"started": r.PathValue("name")})
		}
	}
	// A run made outside the daemon (bunker run, bunker drill by hand)
	// joins the history the daemon holds.
	mux.HandleFunc("POST /api/v1/runs", func(w http.ResponseWriter, r *http.Request) {
		if !a.check(w, r, "the API is read-only: set daemon.api_token in the plan to record runs", a.run) {
			return
		}
		var run state.Run
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&run); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "run: " + err.Error()})
			return
		}
		if err := d.RecordRun(&run); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusCreated, map[string]string{"id": run.ID})
	})
	mux.HandleFunc("POST /api/v1/jobs/{name}/run", run(d.Trigger))
	mux.HandleFunc("POST /api/v1/drills/{name}/run", run(d.TriggerDrill))
	mux.HandleFunc("POST /api/v1/repositories/{name}/check", run(d.TriggerCheck))
	mux.HandleFunc("POST /api/v1/repositories/{name}/prune", run(d.TriggerPrune))
	if o.Extra != nil {
		mux.Handle("/", o.Extra)
	}
	return d.hostGuard(o.AllowedHosts, mux)
}

// auth holds the SHA-256 of each configured token (nil: not set).
// Comparing digests of fixed length takes the same time whatever the
// length and content of a guess: subtle.ConstantTimeCompare on the
// tokens themselves would answer at once when the lengths differ.
type auth struct {
	run, read *[sha256.Size]byte
}

func newAuth(run, read string) auth {
	var a auth
	if run != "" {
		h := sha256.Sum256([]byte(run))
		a.run = &h
	}
	if read != "" {
		h := sha256.Sum256([]byte(read))
		a.read = &h
	}
	return a
}

func (a auth) configured() bool { return a.run != nil || a.read != nil }

// check reports whether r carries "Authorization: Bearer T" with T one
// of the given tokens that are set. Otherwise it answers: 403 with
// unset when none of them is set, else 401 with "WWW-Authenticate:
// Bearer". It reads nothing but the request's header.
func (a auth) check(w http.ResponseWriter, r *http.Request, unset string, tokens ...*[sha256.Size]byte) bool {
	scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
	bearer := strings.EqualFold(scheme, "Bearer")
	set, ok := false, 0
	for _, t := range tokens {
		if t == nil {
			continue
		}
		set = true
		ok |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	switch {
	case !set:
		writeJSON(w, http.StatusForbidden, map[string]string{"error": unset})
		return false
	case !bearer || ok != 1:
		w.Header().Set("WWW-Authenticate", `Bearer realm="bunker"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "wrong or missing token: send Authorization: Bearer with daemon.api_read_token or daemon.api_token"})
		return false
	}
	return true
}

func (d *Daemon) apiStatus() *APIStatus {
	p := d.Plan()
	now := d.clock.Now()
	st := &APIStatus{Time: now, Status: d.Status(), Jobs: []APIJob{}, Drills: []APIDrill{}, Repositories: d.apiRepositories(p, now),
		Running: d.Running(), Alerts: map[string]int64{}}
	slices.Sort(st.Running)
	if st.Running == nil {
		st.Running = []string{}
	}
	for _, j := range p.Jobs {
		aj := APIJob{Name: j.Name, Schedule: j.Schedule, Repository: j.Repository, RPOSeconds: j.RPO.Seconds(), RTOSeconds: j.RTO.Seconds(), Copies: []string{}}
		if s := j.ScheduleOf(); s != nil {
			aj.NextRun = s.Next(now)
		}
		for _, c := range j.Copies {
			aj.Copies = append(aj.Copies, c.Repository)
		}
		aj.LastRun, _ = d.o.Store.LastRun(j.Name, state.KindBackup)
		aj.LastSuccess, _ = d.o.Store.LastSuccess(j.Name, state.KindBackup)
		clearLog(aj.LastRun, aj.LastSuccess)
		st.Jobs = append(st.Jobs, aj)
	}
	for _, dr := range p.Drills {
		ad := APIDrill{Name: dr.Name, Job: dr.Job, Schedule: dr.Schedule, History: []APIDrillPoint{}}
		if j := p.Job(dr.Job); j != nil {
			ad.RTOSeconds = j.RTO.Seconds()
		}
		ad.LastRun, _ = d.o.Store.LastRun(dr.Name, state.KindDrill)
		ad.LastSuccess, _ = d.o.Store.LastSuccess(dr.Name, state.KindDrill)
		clearLog(ad.LastRun, ad.LastSuccess)
		if runs, err := d.o.Store.Runs(dr.Name, 50); err == nil {
			for i := len(runs) - 1; i >= 0; i-- {
				if runs[i].Kind == state.KindDrill && runs[i].Result != state.ResultRunning {
					ad.History = append(ad.History, APIDrillPoint{Time: runs[i].Started, Result: runs[i].Result, RestoreSeconds: runs[i].RestoreSeconds})
				}
			}
		}
		st.Drills = append(st.Drills, ad)
	}
	if alerts, err := d.o.Store.Alerts(); err == nil {
		for k, t := range alerts {
			st.Alerts[k] = t.Unix()
		}
	}
	return st
}

// apiRepositories lists the repositories of p that have a check or a
// prune schedule, each with its last runs.
func (d *Daemon) apiRepositories(p *plan.Plan, now time.Time) []APIRepository {
	out := []APIRepository{}
	task := func(repo, kind, schedule string, s plan.Schedule) *APIRepoTask {
		t := &APIRepoTask{Schedule: schedule}
		if s != nil {
			t.NextRun = s.Next(now)
		}
		t.LastRun, _ = d.o.Store.LastRun(repo, kind)
		t.LastSuccess, _ = d.o.Store.LastSuccess(repo, kind)
		clearLog(t.LastRun, t.LastSuccess)
		return t
	}
	for _, r := range p.Repositories {
		if r.Check == nil && r.Prune == nil {
			continue
		}
		ar := APIRepository{Name: r.Name}
		if r.Check != nil {
			ar.Check = task(r.Name, state.KindCheck, r.Check.Schedule, r.Check.ScheduleOf())
		}
		if r.Prune != nil {
			ar.Prune = task(r.Name, state.KindPrune, r.Prune.Schedule, r.Prune.ScheduleOf())
		}
		out = append(out, ar)
	}
	return out
}

func clearLog(runs ...*state.Run) {
	for _, r := range runs {
		if r != nil {
			r.Log = ""
		}
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	_ = enc.Encode(v)
}
