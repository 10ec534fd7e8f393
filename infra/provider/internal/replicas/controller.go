package replicas

import (
	"log"
	"sort"
	"sync"
	"time"
)

// resyncInterval is how often a controller re-checks its function even when
// nothing woke it, e.g. to retry a replica that could not be created.
const resyncInterval = 2 * time.Second

// control is the per-function controller goroutine.
func (s *Supervisor) control(f *function) {
	defer close(f.done)
	tick := time.NewTicker(resyncInterval)
	defer tick.Stop()
	for {
		if finished := s.reconcile(f); finished {
			return
		}
		select {
		case <-f.wake:
		case <-tick.C:
		case <-s.ctx.Done():
		}
	}
}

// reconcile converges f's replicas on its desired state, one step at a
// time; it returns true once f is deleted (or the provider is stopping)
// and all its replicas are gone.
func (s *Supervisor) reconcile(f *function) bool {
	for {
		f.mu.Lock()
		deleted, desired, gen, stalled := f.deleted, f.desired, f.gen, f.stalledGen
		all := append([]*replica(nil), f.replicas...)
		f.mu.Unlock()

		if deleted || s.ctx.Err() != nil {
			s.stopAll(f, all)
			return true
		}

		var cur, old []*replica
		for _, r := range all {
			if r.gen == gen {
				cur = append(cur, r)
			} else {
				old = append(old, r)
			}
		}

		switch {
		case len(cur) > desired:
			// Scale down: drop replicas that are not serving first.
			s.stopReplica(f, pickVictim(cur))
		case len(old) > 0 && len(cur)+len(old) > desired:
			// Scale down during a rollout: old replicas go first.
			s.stopReplica(f, pickVictim(old))
		case len(cur)+len(old) < desired:
			if _, err := s.startReplica(f, gen); err != nil {
				s.reportStartError(f, err)
				return false
			}
		case len(old) > 0 && stalled != gen:
			// Rolling update: start one new replica, wait until it is
			// ready, then stop one old one.
			r, err := s.startReplica(f, gen)
			if err != nil {
				s.reportStartError(f, err)
				return false
			}
			switch s.waitReady(f, r, gen) {
			case waitReady:
				s.stopReplica(f, pickVictim(old))
			case waitTimeout:
				log.Printf("function %s: rollout stalled: new replica %s not ready after %s; keeping %d old replica(s) until the next update",
					f.name, r.name, s.cfg.ReadyTimeout, len(old))
				f.mu.Lock()
				f.stalledGen = gen
				f.mu.Unlock()
				s.stopReplica(f, r)
			case waitChanged:
				// Desired state changed: re-plan from scratch.
			}
		default:
			return false
		}
	}
}

// reportStartError logs a replica start failure once per distinct message.
func (s *Supervisor) reportStartError(f *function, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lastErr != err.Error() {
		f.lastErr = err.Error()
		log.Printf("function %s: cannot start replica: %v (retrying every %s)", f.name, err, resyncInterval)
	}
}

type waitResult int

const (
	waitReady waitResult = iota
	waitTimeout
	waitChanged
)

// waitReady waits until r is ready, the timeout passes, or f's desired
// state changes (new generation, deletion, shutdown).
func (s *Supervisor) waitReady(f *function, r *replica, gen int) waitResult {
	deadline := time.Now().Add(s.cfg.ReadyTimeout)
	for {
		if r.ready.Load() {
			return waitReady
		}
		f.mu.Lock()
		changed := f.deleted || f.gen != gen
		f.mu.Unlock()
		if changed || s.ctx.Err() != nil {
			return waitChanged
		}
		if time.Now().After(deadline) {
			return waitTimeout
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-s.ctx.Done():
		}
	}
}

// pickVictim chooses which replica to remove: not-ready before ready, then
// the youngest (the oldest has proven itself).
func pickVictim(rs []*replica) *replica {
	sorted := append([]*replica(nil), rs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		ri, rj := sorted[i].ready.Load(), sorted[j].ready.Load()
		if ri != rj {
			return !ri
		}
		return sorted[i].created.After(sorted[j].created)
	})
	return sorted[0]
}

// stopAll stops replicas in parallel (delete and shutdown).
func (s *Supervisor) stopAll(f *function, rs []*replica) {
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.stopReplica(f, r)
		}()
	}
	wg.Wait()
}
