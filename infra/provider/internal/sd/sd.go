// Package sd serves Prometheus HTTP service discovery (http_sd_configs) for
// replicas, so that Prometheus scrapes every replica as a target of its
// own: its of-watchdog's metrics on the watchdog's fixed port 8081, and the
// function's own prometheus_client port. Kubernetes would offer pod
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
}

// Groups builds the target groups. The watchdog's port is listed for every
// replica, also while it drains (its of-watchdog counts the requests it
// finishes); the function's own port only for replicas that are ready or
// starting.
func Groups(rs []replicas.ReplicaInfo) []TargetGroup {
	out := []TargetGroup{}
	for _, r := range rs {
		out = append(out, group(r, fmt.Sprintf("%s:%d", r.IP, replicas.WatchdogMetrics), "watchdog"))
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
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Groups(src.Replicas()))
	}
}
