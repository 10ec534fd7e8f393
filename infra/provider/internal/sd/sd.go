// Package sd serves Prometheus HTTP service discovery (http_sd_configs) for
// replicas, so that Prometheus scrapes every replica as a target of its
// own: the function's own prometheus_client port, and the watchdog metrics
// (of-watchdog's names): behind a real of-watchdog its fixed port 8081, in
// direct mode the provider's page for that replica, because there the
// provider itself does the watchdog's work. Kubernetes would offer pod
// discovery.
package sd

import (
	"encoding/json"
	"fmt"
	"net/http"

	"adserver/provider/internal/replicas"
)

// TargetGroup is one entry of the http_sd JSON list.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// Source lists the replicas to advertise.
type Source interface {
	Replicas() []replicas.ReplicaInfo
	WatchdogMode() bool
}

// MetricsPath is where the ops listener serves a replica's watchdog metrics.
func MetricsPath(replica string) string { return "/replicas/" + replica + "/metrics" }

// Groups builds the target groups. self is the ops listener's address as
// Prometheus reached it (the provider serves direct-mode watchdog metrics
// there). The function's own port is listed for replicas that are ready or
// starting; the provider's watchdog page also while a replica drains, so
// that the requests it finishes are counted.
func Groups(rs []replicas.ReplicaInfo, watchdog bool, self string) []TargetGroup {
	out := []TargetGroup{}
	for _, r := range rs {
		switch {
		case watchdog && !r.Stopping:
			out = append(out, group(r, fmt.Sprintf("%s:%d", r.IP, replicas.WatchdogMetrics), "watchdog"))
		case !watchdog:
			g := group(r, self, "watchdog")
			g.Labels["__metrics_path__"] = MetricsPath(r.Replica)
			g.Labels["instance"] = fmt.Sprintf("%s:%d", r.IP, replicas.FunctionPort)
			out = append(out, g)
		}
		if !r.Stopping {
			out = append(out, group(r, fmt.Sprintf("%s:%d", r.IP, replicas.MetricsPort), "function"))
		}
	}
	return out
}

func group(r replicas.ReplicaInfo, target, kind string) TargetGroup {
	return TargetGroup{
		Targets: []string{target},
		Labels: map[string]string{
			"function_name": r.Function,
			"replica":       r.Replica,
			"netns":         r.Netns,
			"kind":          kind,
		},
	}
}

// Handler serves GET /sd.
func Handler(src Source) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Groups(src.Replicas(), src.WatchdogMode(), r.Host))
	}
}
