package watchdog

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// drainPoll is how often WaitIdle looks at the in-flight count.
const drainPoll = 20 * time.Millisecond

// Replica is the watchdog state of one replica: its configuration, the
// requests it is serving, and its metrics. It is safe for concurrent use.
type Replica struct {
	cfg      Config
	inflight atomic.Int64

	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	gauge    prometheus.Gauge
}

// NewReplica creates the state of a new replica with its own registry, so
// that its metrics page looks exactly like of-watchdog's (no extra labels;
// Prometheus adds function_name and replica from service discovery).
func NewReplica(cfg Config) *Replica {
	r := &Replica{cfg: cfg, registry: prometheus.NewRegistry()}
	r.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: "http", Name: "requests_total", Help: "total HTTP requests processed",
	}, []string{"code", "method"})
	r.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: "http", Name: "request_duration_seconds", Help: "Seconds spent serving HTTP requests.",
		Buckets: prometheus.DefBuckets,
	}, []string{"code", "method"})
	r.gauge = prometheus.NewGauge(prometheus.GaugeOpts{
		Subsystem: "http", Name: "requests_in_flight", Help: "total HTTP requests in-flight",
	})
	r.registry.MustRegister(r.requests, r.duration, r.gauge)
	return r
}

// Config is the replica's watchdog configuration.
func (r *Replica) Config() Config { return r.cfg }

// TryAcquire takes an in-flight slot; false when the replica is at max_inflight.
func (r *Replica) TryAcquire() bool {
	for {
		n := r.inflight.Load()
		if r.cfg.MaxInflight > 0 && n >= int64(r.cfg.MaxInflight) {
			return false
		}
		if r.inflight.CompareAndSwap(n, n+1) {
			r.gauge.Inc()
			return true
		}
	}
}

// Release gives back a slot taken by TryAcquire.
func (r *Replica) Release() {
	r.gauge.Dec()
	r.inflight.Add(-1)
}

// Inflight is the number of requests being served.
func (r *Replica) Inflight() int { return int(r.inflight.Load()) }

// WaitIdle waits until no request is in flight or the timeout passes; it
// reports whether the replica became idle. The caller must have taken the
// replica out of rotation first, so that no new request can start.
func (r *Replica) WaitIdle(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for r.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(drainPoll)
	}
	return true
}

// Observe records one finished request as of-watchdog does (promhttp's
// labels: the status code as a number, the method in lower case).
func (r *Replica) Observe(code int, method string, took time.Duration) {
	c, m := codeLabel(code), methodLabel(method)
	r.requests.WithLabelValues(c, m).Inc()
	r.duration.WithLabelValues(c, m).Observe(took.Seconds())
}

// MetricsHandler serves the replica's metrics page.
func (r *Replica) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(r.registry, promhttp.HandlerOpts{})
}
