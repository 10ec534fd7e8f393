package replicas

import (
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/watchdog"
)

func TestPick(t *testing.T) {
	newReplica := func(name string, ready bool, maxInflight int) *replica {
		r := &replica{name: name, fn: "fn", hostPort: name + ":8080", wd: watchdog.NewReplica(watchdog.Config{MaxInflight: maxInflight})}
		r.ready.Store(ready)
		return r
	}
	starting := newReplica("starting", false, 0)
	full := newReplica("full", true, 1)
	free := newReplica("free", true, 1)
	if !full.wd.TryAcquire() {
		t.Fatal("setup")
	}
	f := newFunction(types.FunctionDeployment{Service: "fn"}, "", 3, time.Now())
	f.replicas = []*replica{starting, full, free}
	s := &Supervisor{fns: map[string]*function{"fn": f}}

	// Whatever the round-robin position, only the free replica can take a request.
	for i := 0; i < 6; i++ {
		tg, ok := s.Pick("fn")
		if !ok || !tg.Acquired || tg.Replica != "free" {
			t.Fatalf("pick %d: %+v %v, want the free replica", i, tg, ok)
		}
		tg.State.Release()
	}
	// All ready replicas full: a target that is not acquired (the proxy answers 429).
	if !free.wd.TryAcquire() {
		t.Fatal("setup")
	}
	tg, ok := s.Pick("fn")
	if !ok || tg.Acquired || (tg.Replica != "full" && tg.Replica != "free") {
		t.Errorf("all full: %+v %v", tg, ok)
	}
	// No ready replica, or no function: nothing to pick.
	full.ready.Store(false)
	free.ready.Store(false)
	if _, ok := s.Pick("fn"); ok {
		t.Error("picked a replica that is not ready")
	}
	if _, ok := s.Pick("other"); ok {
		t.Error("picked a replica of an unknown function")
	}
}
