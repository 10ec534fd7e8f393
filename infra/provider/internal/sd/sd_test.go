package sd

import (
	"testing"

	"adserver/provider/internal/replicas"
)

func TestGroups(t *testing.T) {
	rs := []replicas.ReplicaInfo{
		{Function: "noop", Replica: "noop-1", IP: "10.62.0.10", Ready: true},
		{Function: "noop", Replica: "noop-2", IP: "10.62.0.11"},                 // starting
		{Function: "noop", Replica: "noop-3", IP: "10.62.0.12", Stopping: true}, // left out
	}
	direct := Groups(rs, false)
	if len(direct) != 2 || direct[0].Targets[0] != "10.62.0.10:8000" || direct[0].Labels["kind"] != "function" ||
		direct[1].Labels["replica"] != "noop-2" || direct[1].Labels["function_name"] != "noop" {
		t.Errorf("direct mode: %+v", direct)
	}
	wd := Groups(rs, true)
	if len(wd) != 4 || wd[0].Targets[0] != "10.62.0.10:8081" || wd[0].Labels["kind"] != "watchdog" {
		t.Errorf("watchdog mode: %+v", wd)
	}
	if g := Groups(nil, true); g == nil || len(g) != 0 {
		t.Errorf("no replicas must give [] (not null): %#v", g)
	}
}
