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
	direct := Groups(rs, false, "127.0.0.1:8091")
	// Per replica: the provider's watchdog page, then the function's port
	// (not for the draining replica, whose process is going away).
	if len(direct) != 5 {
		t.Fatalf("direct mode: %d groups: %+v", len(direct), direct)
	}
	wd := direct[0]
	if wd.Targets[0] != "127.0.0.1:8091" || wd.Labels["kind"] != "watchdog" ||
		wd.Labels["__metrics_path__"] != "/replicas/noop-1/metrics" || wd.Labels["instance"] != "10.62.0.10:8080" ||
		wd.Labels["function_name"] != "noop" || wd.Labels["replica"] != "noop-1" {
		t.Errorf("direct mode watchdog group: %+v", wd)
	}
	if direct[1].Targets[0] != "10.62.0.10:8000" || direct[1].Labels["kind"] != "function" {
		t.Errorf("direct mode function group: %+v", direct[1])
	}
	if last := direct[4]; last.Labels["replica"] != "noop-3" || last.Labels["kind"] != "watchdog" {
		t.Errorf("a draining replica keeps its watchdog page: %+v", last)
	}
	real := Groups(rs, true, "127.0.0.1:8091")
	if len(real) != 4 || real[0].Targets[0] != "10.62.0.10:8081" || real[0].Labels["kind"] != "watchdog" {
		t.Errorf("watchdog mode: %+v", real)
	}
	if g := Groups(nil, true, ""); g == nil || len(g) != 0 {
		t.Errorf("no replicas must give [] (not null): %#v", g)
	}
}
