package replicas

import (
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

func TestPick(t *testing.T) {
	newReplica := func(name string, ready bool) *replica {
		r := &replica{name: name, fn: "fn", hostPort: name + ":8080"}
		r.ready.Store(ready)
		return r
	}
	starting := newReplica("starting", false)
	a, b := newReplica("a", true), newReplica("b", true)
	f := newFunction(types.FunctionDeployment{Service: "fn"}, "", 3, time.Now())
	f.replicas = []*replica{starting, a, b}
	s := &Supervisor{fns: map[string]*function{"fn": f}}

	// Round-robin over the ready replicas only; each pick counts as in flight until Done.
	seen := map[string]int{}
	var targets []Target
	for i := 0; i < 6; i++ {
		tg, ok := s.Pick("fn")
		if !ok || tg.Replica == "starting" || tg.HostPort != tg.Replica+":8080" {
			t.Fatalf("pick %d: %+v %v", i, tg, ok)
		}
		seen[tg.Replica]++
		targets = append(targets, tg)
	}
	if seen["a"] != 3 || seen["b"] != 3 || a.inflight.Load() != 3 {
		t.Errorf("picks %v, in flight on a: %d", seen, a.inflight.Load())
	}
	for _, tg := range targets {
		tg.Done()
	}
	if a.inflight.Load() != 0 || b.inflight.Load() != 0 {
		t.Errorf("in flight after Done: %d %d", a.inflight.Load(), b.inflight.Load())
	}
	// No ready replica, or no function: nothing to pick.
	a.ready.Store(false)
	b.ready.Store(false)
	if _, ok := s.Pick("fn"); ok {
		t.Error("picked a replica that is not ready")
	}
	if _, ok := s.Pick("other"); ok {
		t.Error("picked a replica of an unknown function")
	}
}
