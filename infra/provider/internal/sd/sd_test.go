package sd

import (
	"testing"

	"adserver/provider/internal/replicas"
)

func TestGroups(t *testing.T) {
	rs := []replicas.ReplicaInfo{
		{Function: "noop", Replica: "noop-1", IP: "10.62.0.10", Ready: true},
		{Function: "noop", Replica: "noop-2", IP: "10.62.0.11"},                 // starting
		{Function: "noop", Replica: "noop-3", IP: "10.62.0.12", Stopping: true}, // draining
	}
	groups := Groups(rs)
	// Per replica: its of-watchdog, then the function's port (not for the
	// draining replica, whose function process is going away).
	if len(groups) != 5 {
		t.Fatalf("%d groups: %+v", len(groups), groups)
	}
	wd := groups[0]
	if wd.Targets[0] != "10.62.0.10:8081" || wd.Labels["kind"] != "watchdog" ||
		wd.Labels["function_name"] != "noop" || wd.Labels["replica"] != "noop-1" {
		t.Errorf("watchdog group: %+v", wd)
	}
	if groups[1].Targets[0] != "10.62.0.10:8000" || groups[1].Labels["kind"] != "function" {
		t.Errorf("function group: %+v", groups[1])
	}
	if last := groups[4]; last.Targets[0] != "10.62.0.12:8081" || last.Labels["kind"] != "watchdog" {
		t.Errorf("a draining replica keeps its watchdog target: %+v", last)
	}
	if g := Groups(nil); g == nil || len(g) != 0 {
		t.Errorf("no replicas must give [] (not null): %#v", g)
	}
}
