package restserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, in a registry of their
// own. Labels never hold repository paths or user names.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec   // method, type, status
	duration  *prometheus.HistogramVec // method, type
	bytesIn   *prometheus.CounterVec   // type
	bytesOut  *prometheus.CounterVec   // type
	inFlight  prometheus.Gauge
	authFails prometheus.Counter
	rejected  prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bunker_rest_requests_total",
			Help: "Requests served, by method, object type and status code.",
		}, []string{"method", "type", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bunker_rest_request_duration_seconds",
			Help:    "Time to serve a request, by method and object type.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"method", "type"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bunker_rest_received_bytes_total",
			Help: "Request body bytes received, by object type.",
		}, []string{"type"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bunker_rest_sent_bytes_total",
			Help: "Response body bytes sent, by object type.",
		}, []string{"type"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bunker_rest_requests_in_flight",
			Help: "Requests being served.",
		}),
		authFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bunker_rest_auth_failures_total",
			Help: "Requests refused for missing or wrong credentials.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bunker_rest_overload_rejections_total",
			Help: "Requests refused with 503 because too many were in flight.",
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.inFlight, m.authFails, m.rejected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
