// Package sd serves Prometheus HTTP service discovery (http_sd_configs) for
// replicas, so that Prometheus scrapes every replica directly: the
// function's own prometheus_client port and, behind of-watchdog, the
// watchdog's fixed metrics port. Kubernetes would offer pod discovery.
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

// Groups builds the target groups for every replica that is ready or
// starting (replicas being stopped are left out).
func Groups(rs []replicas.ReplicaInfo, watchdog bool) []TargetGroup {
	out := []TargetGroup{}
	for _, r := range rs {
		if r.Stopping {
			continue
		}
		if watchdog {
			out = append(out, group(r, replicas.WatchdogMetrics, "watchdog"))
		}
		out = append(out, group(r, replicas.MetricsPort, "function"))
	}
	return out
}

func group(r replicas.ReplicaInfo, port int, kind string) TargetGroup {
	return TargetGroup{
		Targets: []string{fmt.Sprintf("%s:%d", r.IP, port)},
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
		_ = json.NewEncoder(w).Encode(Groups(src.Replicas(), src.WatchdogMode()))
	}
}
