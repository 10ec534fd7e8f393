package main

import (
	"math"
	"time"
)

// Reasons a decision gives; they are label values of
// autoscaler_decisions_total, so they stay few and stable.
const (
	ReasonLoadAbove   = "load-above-target" // more replicas needed for the load
	ReasonLoadBelow   = "load-below-target" // fewer needed for a whole stabilisation window
	ReasonStabilising = "stabilising"       // fewer needed, but not yet for a whole window
	ReasonOnTarget    = "on-target"         // the replicas fit the load
	ReasonBelowMin    = "below-min"         // raised to com.openfaas.scale.min
	ReasonAboveMax    = "above-max"         // lowered to com.openfaas.scale.max
	ReasonAtMax       = "at-max"            // the load asks for more than com.openfaas.scale.max
	ReasonIdle        = "idle"              // no request for zero-duration: to zero
	ReasonAtZero      = "at-zero"           // scaled to zero; the gateway wakes it on the next request
	ReasonNoMetrics   = "no-metrics"        // Prometheus did not answer: hold
)

// MovingReasons are the reasons a decision that changes the replica count can give (in either
// direction). The autoscaler starts each of these series at zero for every function it manages,
// so that the first decision is an increase a dashboard can see (a counter born at 1 shows none).
var MovingReasons = []string{
	ReasonLoadAbove, ReasonLoadBelow, ReasonBelowMin, ReasonAboveMax, ReasonAtMax, ReasonIdle,
}

// Recommendation is what the load asked for at one moment.
type Recommendation struct {
	At       time.Time
	Replicas int
}

// Input is everything one decision depends on.
type Input struct {
	Current int     // replicas the function has now
	Load    float64 // total over its replicas: requests/s, requests in flight or millicores
	HasLoad bool    // false when the metric could not be read
	Policy  Policy
	Now     time.Time
	// Window is the scale-in stabilisation window; Recent holds earlier
	// recommendations (older ones are ignored).
	Window time.Duration
	Recent []Recommendation
	// IdleFor is how long the function has had no request.
	IdleFor time.Duration
}

// Decision is the replica count to set and why. Recommended is what the
// load alone asks for now (kept by the caller for later windows).
type Decision struct {
	Desired     int
	Recommended int
	Reason      string
}

// Decide computes the desired replicas. Scale-up is immediate: the load
// divided by (target x target-proportion) per replica, rounded up, within
// min..max. Scale-in is stabilised: the count never drops below the highest
// recommendation made during the last Window, so a function shrinks only
// after its load has stayed low for a whole window (Kubernetes' HPA does
// the same). A function that may scale to zero goes there after
// zero-duration without requests; at zero it stays until the gateway wakes
// it.
//
// Example: 120 requests/s, target 50, proportion 0.9: ceil(120/45) = 3.
func Decide(in Input) Decision {
	p := in.Policy
	hold := func(reason string) Decision {
		return Decision{Desired: in.Current, Recommended: in.Current, Reason: reason}
	}
	if in.Current == 0 {
		if p.Zero {
			return hold(ReasonAtZero)
		}
		return Decision{Desired: p.Min, Recommended: p.Min, Reason: ReasonBelowMin}
	}
	if !in.HasLoad {
		return hold(ReasonNoMetrics)
	}
	if p.Zero && in.IdleFor >= p.ZeroDuration {
		return Decision{Desired: 0, Recommended: 0, Reason: ReasonIdle}
	}
	per := p.Target * p.Proportion
	raw := int(math.Ceil(in.Load/per - 1e-9))
	rec := min(max(raw, p.Min), p.Max)

	switch {
	case in.Current > p.Max:
		return Decision{Desired: p.Max, Recommended: rec, Reason: ReasonAboveMax}
	case in.Current < p.Min:
		return Decision{Desired: max(rec, p.Min), Recommended: rec, Reason: ReasonBelowMin}
	case rec > in.Current:
		return Decision{Desired: rec, Recommended: rec, Reason: ReasonLoadAbove}
	case rec == in.Current && raw > p.Max:
		return Decision{Desired: rec, Recommended: rec, Reason: ReasonAtMax}
	case rec == in.Current:
		return Decision{Desired: rec, Recommended: rec, Reason: ReasonOnTarget}
	}
	peak := rec
	for _, r := range in.Recent {
		if in.Now.Sub(r.At) < in.Window && r.Replicas > peak {
			peak = r.Replicas
		}
	}
	if peak >= in.Current {
		return Decision{Desired: in.Current, Recommended: rec, Reason: ReasonStabilising}
	}
	return Decision{Desired: peak, Recommended: rec, Reason: ReasonLoadBelow}
}
