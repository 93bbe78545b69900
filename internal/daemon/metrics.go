package daemon

import (
	"runtime"
	"strconv"

	"github.com/bunkerbackup/bunker/internal/engine/format"
	"github.com/bunkerbackup/bunker/internal/monitor"
	"github.com/bunkerbackup/bunker/internal/plan"
	"github.com/bunkerbackup/bunker/internal/state"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the daemon's Prometheus metrics (docs/DAEMON.md lists
// them).
type Metrics struct {
	Registry *prometheus.Registry

	lastSuccess   *prometheus.GaugeVec
	runs          *prometheus.CounterVec
	duration      *prometheus.GaugeVec
	bytesAdded    *prometheus.CounterVec
	bytesRead     *prometheus.CounterVec
	rpoAge        *prometheus.GaugeVec
	rpoObjective  *prometheus.GaugeVec
	rpoViolated   *prometheus.GaugeVec
	copies        *prometheus.GaugeVec
	rule321       *prometheus.GaugeVec
	drillSuccess  *prometheus.GaugeVec
	drillLastRun  *prometheus.GaugeVec
	drillRestore  *prometheus.GaugeVec
	rtoViolated   *prometheus.GaugeVec
	repoReachable *prometheus.GaugeVec
	repoSize      *prometheus.GaugeVec
	repoRuns      *prometheus.CounterVec
	repoSuccess   *prometheus.GaugeVec
}

// NewMetrics registers the metrics in a new registry: the daemon's own,
// bunker_build_info for version (the program's version, which the front
// end knows), and the standard Go runtime and process collectors.
func NewMetrics(version string) *Metrics {
	g := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	c := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		Registry:      prometheus.NewRegistry(),
		lastSuccess:   g("bunker_job_last_success_timestamp_seconds", "Unix time of the job's last successful run.", "job"),
		runs:          c("bunker_job_runs_total", "Runs of the job by result (success, failed, cancelled).", "job", "result"),
		duration:      g("bunker_job_duration_seconds", "Duration of the job's last run.", "job"),
		bytesAdded:    c("bunker_job_bytes_added_total", "Bytes the job's backups added to the repository after deduplication.", "job"),
		bytesRead:     c("bunker_job_bytes_read_total", "Bytes the job's backups read from the source.", "job"),
		rpoAge:        g("bunker_rpo_age_seconds", "Age of the job's newest backup in its repository (what a loss now would cost).", "job"),
		rpoObjective:  g("bunker_rpo_objective_seconds", "The job's RPO.", "job"),
		rpoViolated:   g("bunker_rpo_violated", "1 when the job's newest backup is older than its RPO.", "job"),
		copies:        g("bunker_copies", "Copies of the dataset: the live data plus every repository holding a backup.", "dataset"),
		rule321:       g("bunker_rule_321_ok", "1 when the dataset meets the copy rule (3-2-1 by default).", "dataset"),
		drillSuccess:  g("bunker_drill_last_success", "1 when the drill's last run restored and validated, 0 when it failed.", "drill"),
		drillLastRun:  g("bunker_drill_last_run_timestamp_seconds", "Unix time of the drill's last run.", "drill"),
		drillRestore:  g("bunker_drill_restore_seconds", "Restore time the drill measured (the RTO evidence).", "drill"),
		rtoViolated:   g("bunker_rto_violated", "1 when the drill's restore took longer than the job's RTO.", "drill"),
		repoReachable: g("bunker_repository_reachable", "1 when the repository could be read at the last measurement.", "repository"),
		repoSize:      g("bunker_repository_size_bytes", "Stored size of the repository.", "repository"),
		repoRuns:      c("bunker_repository_runs_total", "Scheduled checks and prunes of the repository by kind (check, prune) and result (success, failed, cancelled).", "repository", "kind", "result"),
		repoSuccess:   g("bunker_repository_last_success_timestamp_seconds", "Unix time of the repository's last successful check or prune (kind).", "repository", "kind"),
	}
	m.Registry.MustRegister(m.lastSuccess, m.runs, m.duration, m.bytesAdded, m.bytesRead, m.rpoAge, m.rpoObjective, m.rpoViolated,
		m.copies, m.rule321, m.drillSuccess, m.drillLastRun, m.drillRestore, m.rtoViolated, m.repoReachable, m.repoSize, m.repoRuns, m.repoSuccess)
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "bunker_build_info",
		Help:        "Always 1; the labels say which bunker runs: its version, the Go release that built it, the repository format it writes.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version(), "format": strconv.Itoa(format.Version)}})
	build.Set(1)
	m.Registry.MustRegister(build, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *Metrics) jobRun(r *state.Run) {
	m.runs.WithLabelValues(r.Job, r.Result).Inc()
	m.duration.WithLabelValues(r.Job).Set(r.Finished.Sub(r.Started).Seconds())
	if r.Result == state.ResultSuccess {
		m.lastSuccess.WithLabelValues(r.Job).Set(float64(r.Finished.UnixMilli()) / 1000)
		m.bytesAdded.WithLabelValues(r.Job).Add(float64(r.BytesAdded))
		m.bytesRead.WithLabelValues(r.Job).Add(float64(r.BytesRead))
	}
}

// repoRun counts a repository's finished check or prune.
func (m *Metrics) repoRun(r *state.Run) {
	m.repoRuns.WithLabelValues(r.Repository, r.Kind, r.Result).Inc()
	if r.Result == state.ResultSuccess {
		m.repoSuccess.WithLabelValues(r.Repository, r.Kind).Set(float64(r.Finished.UnixMilli()) / 1000)
	}
}

func (m *Metrics) drillRun(r *state.Run, p *plan.Plan) {
	m.drillLastRun.WithLabelValues(r.Job).Set(float64(r.Finished.UnixMilli()) / 1000)
	ok := r.Result == state.ResultSuccess
	m.drillSuccess.WithLabelValues(r.Job).Set(b2f(ok))
	if ok {
		m.drillRestore.WithLabelValues(r.Job).Set(r.RestoreSeconds)
		for _, d := range p.Drills {
			if d.Name == r.Job {
				if j := p.Job(d.Job); j != nil && j.RTO > 0 {
					m.rtoViolated.WithLabelValues(r.Job).Set(b2f(r.RestoreSeconds > j.RTO.Seconds()))
				}
			}
		}
	}
}

func (m *Metrics) status(st *monitor.Status) {
	for _, j := range st.Jobs {
		if j.RPOSeconds > 0 {
			m.rpoObjective.WithLabelValues(j.Name).Set(j.RPOSeconds)
			m.rpoViolated.WithLabelValues(j.Name).Set(b2f(j.RPOState == monitor.RPOViolated))
		}
		if j.LastSuccess != nil {
			m.rpoAge.WithLabelValues(j.Name).Set(j.AgeSeconds)
		}
	}
	for _, d := range st.Datasets {
		m.copies.WithLabelValues(d.Job).Set(float64(d.Copies))
		m.rule321.WithLabelValues(d.Job).Set(b2f(d.OK))
	}
	for _, r := range st.Repositories {
		m.repoReachable.WithLabelValues(r.Name).Set(b2f(r.Reachable))
		if r.SizeBytes > 0 {
			m.repoSize.WithLabelValues(r.Name).Set(float64(r.SizeBytes))
		}
	}
}
