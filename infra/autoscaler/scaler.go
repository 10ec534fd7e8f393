package main

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Settings are the autoscaler's own knobs (flags, see main.go).
type Settings struct {
	Interval      time.Duration // how often every function is looked at
	Window        time.Duration // scale-in stabilisation window
	MetricsWindow time.Duration // range of the Prometheus rate/average
	MaxReplicas   int           // the platform's per-function limit
	Only          string        // if set, manage only functions whose name starts with it
}

// LastDecision is the latest scaling action for one function.
type LastDecision struct {
	From   int       `json:"from"`
	To     int       `json:"to"`
	Reason string    `json:"reason"`
	Load   float64   `json:"load"`
	At     time.Time `json:"at"`
	Error  string    `json:"error,omitempty"`
}

// FunctionState is what GET /status reports per function.
type FunctionState struct {
	Type     string        `json:"type"`
	Target   float64       `json:"target"`
	Min      int           `json:"min"`
	Max      int           `json:"max"`
	Zero     bool          `json:"zero"`
	Current  int           `json:"current"`
	Desired  int           `json:"desired"`
	Load     float64       `json:"load"`
	Reason   string        `json:"reason"`
	Last     *LastDecision `json:"lastDecision,omitempty"`
	Problems []string      `json:"labelProblems,omitempty"`

	recent     []Recommendation
	lastActive time.Time
	problemKey string
}

// Scaler runs the decision loop and keeps each function's state.
type Scaler struct {
	cfg  Settings
	plat platform
	prom promClient
	log  *slog.Logger

	decisions *prometheus.CounterVec
	desired   *prometheus.GaugeVec
	load      *prometheus.GaugeVec
	errors    *prometheus.CounterVec
	ticks     prometheus.Counter

	mu    sync.Mutex
	state map[string]*FunctionState
}

func newScaler(cfg Settings, plat platform, prom promClient, log *slog.Logger, reg prometheus.Registerer) *Scaler {
	s := &Scaler{cfg: cfg, plat: plat, prom: prom, log: log, state: map[string]*FunctionState{}}
	s.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "autoscaler_decisions_total",
		Help: "Scaling actions taken, by function, direction (up/down) and reason.",
	}, []string{"function", "direction", "reason"})
	s.desired = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "autoscaler_desired_replicas",
		Help: "Replicas the autoscaler wants for each function it manages.",
	}, []string{"function"})
	s.load = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "autoscaler_load",
		Help: "The load each decision was made on, in the function's scaling type (rps: requests/s, capacity: in flight, cpu: millicores).",
	}, []string{"function", "type"})
	s.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "autoscaler_errors_total",
		Help: "Failed steps: listing functions, querying Prometheus, scaling.",
	}, []string{"stage"})
	s.ticks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "autoscaler_evaluations_total", Help: "Decision rounds over all functions.",
	})
	reg.MustRegister(s.decisions, s.desired, s.load, s.errors, s.ticks)
	return s
}

// Run evaluates every function each Interval until ctx ends.
func (s *Scaler) Run(ctx context.Context) {
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		s.evaluate(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Scaler) evaluate(ctx context.Context, now time.Time) {
	s.ticks.Inc()
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Interval+5*time.Second)
	defer cancel()
	fns, err := s.plat.functions(rctx)
	if err != nil {
		s.errors.WithLabelValues("list").Inc()
		s.log.Warn("cannot list functions", "error", err.Error())
		return
	}
	queries := loadQueries(s.cfg.MetricsWindow)
	loads := map[string]map[string]float64{}
	for kind, q := range queries {
		v, err := s.prom.byFunction(rctx, q)
		if err != nil {
			s.errors.WithLabelValues("prometheus").Inc()
			s.log.Warn("cannot query prometheus", "type", kind, "error", err.Error())
			continue
		}
		loads[kind] = v
	}

	seen := map[string]bool{}
	for _, fn := range fns {
		if s.cfg.Only != "" && !strings.HasPrefix(fn.Name, s.cfg.Only) {
			continue
		}
		policy, problems := ParsePolicy(fn.Labels, s.cfg.MaxReplicas)
		if !policy.Managed {
			continue
		}
		seen[fn.Name] = true
		s.decide(rctx, fn, policy, problems, loads, now)
	}
	s.mu.Lock()
	for name := range s.state {
		if !seen[name] {
			delete(s.state, name)
			s.desired.DeleteLabelValues(name)
		}
	}
	s.mu.Unlock()
}

func (s *Scaler) decide(ctx context.Context, fn function, p Policy, problems []string, loads map[string]map[string]float64, now time.Time) {
	s.mu.Lock()
	st := s.state[fn.Name]
	if st == nil {
		st = &FunctionState{lastActive: now}
		s.state[fn.Name] = st
		for _, direction := range []string{"up", "down"} {
			for _, reason := range MovingReasons {
				s.decisions.WithLabelValues(fn.Name, direction, reason).Add(0)
			}
		}
	}
	s.mu.Unlock()

	if key := strings.Join(problems, "; "); key != st.problemKey {
		st.problemKey = key
		if key != "" {
			s.log.Warn("label problems", "function", fn.Name, "problems", problems)
		}
	}
	byType, hasLoad := loads[p.Type]
	load := byType[fn.Name]
	// Idle means no request at all, whatever the scaling type.
	if rps := loads[TypeRPS][fn.Name]; rps > 0 || fn.Replicas == 0 {
		st.lastActive = now
	}
	in := Input{
		Current: fn.Replicas, Load: load, HasLoad: hasLoad, Policy: p, Now: now,
		Window: s.cfg.Window, Recent: st.recent, IdleFor: now.Sub(st.lastActive),
	}
	d := Decide(in)
	st.recent = append(slices.DeleteFunc(st.recent, func(r Recommendation) bool {
		return now.Sub(r.At) >= s.cfg.Window
	}), Recommendation{At: now, Replicas: d.Recommended})

	s.desired.WithLabelValues(fn.Name).Set(float64(d.Desired))
	if hasLoad {
		s.load.WithLabelValues(fn.Name, p.Type).Set(load)
	}
	s.mu.Lock()
	st.Type, st.Target, st.Min, st.Max, st.Zero = p.Type, p.Target, p.Min, p.Max, p.Zero
	st.Current, st.Desired, st.Load, st.Reason, st.Problems = fn.Replicas, d.Desired, load, d.Reason, problems
	s.mu.Unlock()
	if d.Desired == fn.Replicas {
		return
	}

	direction := "up"
	if d.Desired < fn.Replicas {
		direction = "down"
	}
	last := &LastDecision{From: fn.Replicas, To: d.Desired, Reason: d.Reason, Load: load, At: now.UTC()}
	err := s.plat.scale(ctx, fn.Name, d.Desired)
	attrs := []any{"function", fn.Name, "from", fn.Replicas, "to", d.Desired, "direction", direction,
		"reason", d.Reason, "type", p.Type, "load", load, "target", p.Target}
	if err != nil {
		last.Error = err.Error()
		s.errors.WithLabelValues("scale").Inc()
		s.log.Error("scale failed", append(attrs, "error", err.Error())...)
	} else {
		s.decisions.WithLabelValues(fn.Name, direction, d.Reason).Inc()
		s.log.Info("scale", attrs...)
	}
	s.mu.Lock()
	st.Last = last
	s.mu.Unlock()
}

// Status is a copy of every managed function's state, for GET /status.
func (s *Scaler) Status() map[string]FunctionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]FunctionState, len(s.state))
	names := make([]string, 0, len(s.state))
	for n := range s.state {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		st := *s.state[n]
		if st.Last != nil {
			last := *st.Last
			st.Last = &last
		}
		st.recent = nil
		out[n] = st
	}
	return out
}
