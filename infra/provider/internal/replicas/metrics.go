package replicas

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics exports replica counts (computed at scrape time from the live
// state, so they can never drift) and the restart counter.
type metrics struct {
	sup       *Supervisor
	restarts  *prometheus.CounterVec
	replicas  *prometheus.Desc
	available *prometheus.Desc
	desired   *prometheus.Desc
}

func newMetrics(s *Supervisor, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sup: s,
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provider_replica_restarts_total",
			Help: "Replica processes restarted after they exited unexpectedly.",
		}, []string{"function_name"}),
		replicas: prometheus.NewDesc("provider_replicas",
			"Replicas that exist (starting, ready or restarting).", []string{"function_name"}, nil),
		available: prometheus.NewDesc("provider_available_replicas",
			"Replicas whose /_/ready answers 200 and that receive invocations.", []string{"function_name"}, nil),
		desired: prometheus.NewDesc("provider_desired_replicas",
			"Replicas the deployment asks for.", []string{"function_name"}, nil),
	}
	if reg != nil {
		if err := reg.Register(m.restarts); err != nil {
			return nil, err
		}
		if err := reg.Register(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// forget drops a deleted function's restart series.
func (m *metrics) forget(fn string) { m.restarts.DeleteLabelValues(fn) }

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.replicas
	ch <- m.available
	ch <- m.desired
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, st := range m.sup.List() {
		_, _, total := m.sup.Availability(st.Name)
		ch <- prometheus.MustNewConstMetric(m.replicas, prometheus.GaugeValue, float64(total), st.Name)
		ch <- prometheus.MustNewConstMetric(m.available, prometheus.GaugeValue, float64(st.AvailableReplicas), st.Name)
		ch <- prometheus.MustNewConstMetric(m.desired, prometheus.GaugeValue, float64(st.Replicas), st.Name)
	}
}
