package operator

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the operator's Prometheus metrics (docs/OPERATOR.md lists
// them). Labels never carry secrets: namespaces and Schedule names only.
type metrics struct {
	backups     *prometheus.CounterVec // namespace, result
	restores    *prometheus.CounterVec // namespace, result
	duration    prometheus.Histogram   // seconds from start to completion of completed backups
	lastSuccess *prometheus.GaugeVec   // namespace, schedule
	running     *prometheus.GaugeVec   // kind

	mu   sync.Mutex
	last map[[2]string]float64 // lastSuccess values, so that it never goes back
}

// Results in the result label.
const (
	resultCompleted       = "completed"
	resultFailed          = "failed"
	resultPartiallyFailed = "partially_failed"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		backups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bunker_operator_backups_total",
			Help: "Backups that ended, by namespace and result (completed, failed).",
		}, []string{"namespace", "result"}),
		restores: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bunker_operator_restores_total",
			Help: "Restores that ended, by namespace and result (completed, partially_failed, failed).",
		}, []string{"namespace", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bunker_operator_backup_duration_seconds",
			Help:    "Time from the start to the completion of completed backups.",
			Buckets: []float64{10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800},
		}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bunker_operator_last_success_timestamp_seconds",
			Help: "Unix time of the newest completed backup, by namespace and Schedule (\"\" for backups no Schedule made).",
		}, []string{"namespace", "schedule"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bunker_operator_running",
			Help: "Backups and Restores in phase Running, by kind (backup, restore).",
		}, []string{"kind"}),
		last: map[[2]string]float64{},
	}
	var err error
	m.backups = register(reg, m.backups, &err)
	m.restores = register(reg, m.restores, &err)
	m.duration = register(reg, m.duration, &err)
	m.lastSuccess = register(reg, m.lastSuccess, &err)
	m.running = register(reg, m.running, &err)
	if err != nil {
		return nil, fmt.Errorf("operator: register metrics: %w", err)
	}
	return m, nil
}

// register registers c, or returns the collector already registered
// under its name (a second Operator in the same process shares them).
func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if *errp == nil {
		*errp = err
	}
	return c
}

// success records a completed backup at unix time t, unless a newer one
// was recorded.
func (m *metrics) success(namespace, schedule string, t float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{namespace, schedule}
	if t <= m.last[k] {
		return
	}
	m.last[k] = t
	m.lastSuccess.WithLabelValues(namespace, schedule).Set(t)
}
