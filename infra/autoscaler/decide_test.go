package main

import (
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ago := func(s int) time.Time { return now.Add(-time.Duration(s) * time.Second) }
	rps := Policy{Managed: true, Type: TypeRPS, Target: 50, Proportion: 0.9, Min: 1, Max: 5, ZeroDuration: 15 * time.Minute}
	capacity := Policy{Managed: true, Type: TypeCapacity, Target: 2, Proportion: 1, Min: 1, Max: 3}
	zero := rps
	zero.Zero, zero.ZeroDuration = true, time.Minute
	window := 15 * time.Second

	cases := []struct {
		name    string
		in      Input
		desired int
		reason  string
	}{
		{"idle function stays at min", Input{Current: 1, Load: 0, HasLoad: true, Policy: rps}, 1, ReasonOnTarget},
		{"load fits one replica", Input{Current: 1, Load: 45, HasLoad: true, Policy: rps}, 1, ReasonOnTarget},
		{"just above target x proportion", Input{Current: 1, Load: 45.5, HasLoad: true, Policy: rps}, 2, ReasonLoadAbove},
		{"scale-up is immediate and proportional", Input{Current: 1, Load: 120, HasLoad: true, Policy: rps}, 3, ReasonLoadAbove},
		{"scale-up stops at max", Input{Current: 2, Load: 10000, HasLoad: true, Policy: rps}, 5, ReasonLoadAbove},
		{"at max with more load: stays, says so", Input{Current: 5, Load: 10000, HasLoad: true, Policy: rps}, 5, ReasonAtMax},
		{"capacity: 6 in flight at 2 each", Input{Current: 1, Load: 6, HasLoad: true, Policy: capacity}, 3, ReasonLoadAbove},
		{"scale-in held while the window remembers the peak",
			Input{Current: 3, Load: 0, HasLoad: true, Policy: capacity, Now: now, Window: window,
				Recent: []Recommendation{{ago(20), 3}, {ago(10), 3}, {ago(5), 1}}}, 3, ReasonStabilising},
		{"scale-in once the window has passed",
			Input{Current: 3, Load: 0, HasLoad: true, Policy: capacity, Now: now, Window: window,
				Recent: []Recommendation{{ago(30), 3}, {ago(16), 3}, {ago(10), 1}}}, 1, ReasonLoadBelow},
		{"scale-in to the highest recommendation in the window",
			Input{Current: 3, Load: 1, HasLoad: true, Policy: capacity, Now: now, Window: window,
				Recent: []Recommendation{{ago(20), 3}, {ago(8), 2}}}, 2, ReasonLoadBelow},
		{"no window: scale-in at once", Input{Current: 4, Load: 50, HasLoad: true, Policy: rps, Now: now}, 2, ReasonLoadBelow},
		{"above max after a label change", Input{Current: 5, Load: 0, HasLoad: true, Policy: capacity}, 3, ReasonAboveMax},
		{"below min after a label change", Input{Current: 1, Load: 0, HasLoad: true, Policy: Policy{Managed: true, Target: 50, Proportion: 1, Min: 2, Max: 5}}, 2, ReasonBelowMin},
		{"no metrics: hold", Input{Current: 3, HasLoad: false, Policy: rps}, 3, ReasonNoMetrics},
		{"scaled to zero by hand, zero not allowed: back to min", Input{Current: 0, HasLoad: true, Policy: rps}, 1, ReasonBelowMin},
		{"zero allowed, idle long enough", Input{Current: 2, Load: 0, HasLoad: true, Policy: zero, IdleFor: time.Minute}, 0, ReasonIdle},
		{"zero allowed, idle not long enough", Input{Current: 1, Load: 0, HasLoad: true, Policy: zero, IdleFor: 59 * time.Second}, 1, ReasonOnTarget},
		{"at zero it stays for the gateway to wake", Input{Current: 0, Load: 0, HasLoad: true, Policy: zero, IdleFor: time.Hour}, 0, ReasonAtZero},
		{"min equals max: fixed", Input{Current: 2, Load: 90, HasLoad: true, Policy: Policy{Managed: true, Target: 50, Proportion: 1, Min: 2, Max: 2}}, 2, ReasonOnTarget},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Decide(c.in)
			if got.Desired != c.desired || got.Reason != c.reason {
				t.Errorf("Decide(current %d, load %g) = %d (%s), want %d (%s)",
					c.in.Current, c.in.Load, got.Desired, got.Reason, c.desired, c.reason)
			}
		})
	}
}

func TestDecideRecommendsWhatTheLoadAsksFor(t *testing.T) {
	p := Policy{Managed: true, Type: TypeCapacity, Target: 2, Proportion: 1, Min: 1, Max: 3}
	now := time.Now()
	got := Decide(Input{Current: 3, Load: 0, HasLoad: true, Policy: p, Now: now, Window: time.Minute,
		Recent: []Recommendation{{now.Add(-time.Second), 3}}})
	if got.Desired != 3 || got.Recommended != 1 {
		t.Errorf("while stabilising the recommendation must be the load's own (1), kept 3: %+v", got)
	}
}
