package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The labels the autoscaler reads, with OpenFaaS Pro's names and meaning
// (docs.openfaas.com/architecture/autoscaling).
const (
	LabelMin          = "com.openfaas.scale.min"
	LabelMax          = "com.openfaas.scale.max"
	LabelType         = "com.openfaas.scale.type"
	LabelTarget       = "com.openfaas.scale.target"
	LabelProportion   = "com.openfaas.scale.target-proportion"
	LabelZero         = "com.openfaas.scale.zero"
	LabelZeroDuration = "com.openfaas.scale.zero-duration"
)

// Scaling types: what one replica's load is measured in.
const (
	TypeRPS      = "rps"      // requests per second
	TypeCapacity = "capacity" // requests in flight
	TypeCPU      = "cpu"      // millicores (1000 = one core)
)

// OpenFaaS Pro's defaults, except max, which is the provider's per-function
// limit (5, also what the CE gateway allows).
const (
	defaultType         = TypeRPS
	defaultTarget       = 50
	defaultProportion   = 0.90
	defaultMin          = 1
	defaultZeroDuration = 15 * time.Minute
)

// Policy is how one function wants to be scaled.
type Policy struct {
	// Managed is false for functions that name neither a type nor a
	// target: the autoscaler leaves them alone (opt-in by label).
	Managed      bool
	Type         string
	Target       float64 // load per replica
	Proportion   float64 // scale when load reaches Target x Proportion per replica
	Min, Max     int
	Zero         bool
	ZeroDuration time.Duration
}

// ParsePolicy reads a function's labels. Problems are reported all at once;
// each bad value falls back to its default, so one typo never stops a
// function from being scaled. maxReplicas is the platform's limit.
func ParsePolicy(labels map[string]string, maxReplicas int) (Policy, []string) {
	var problems []string
	bad := func(key, v, why string) { problems = append(problems, fmt.Sprintf("%s=%q: %s", key, v, why)) }
	p := Policy{
		Type: defaultType, Target: defaultTarget, Proportion: defaultProportion,
		Min: defaultMin, Max: maxReplicas, ZeroDuration: defaultZeroDuration,
	}
	_, hasType := labels[LabelType]
	_, hasTarget := labels[LabelTarget]
	p.Managed = hasType || hasTarget

	if v, ok := labels[LabelType]; ok {
		switch t := strings.TrimSpace(v); t {
		case TypeRPS, TypeCapacity, TypeCPU:
			p.Type = t
		case "inflight":
			p.Type = TypeCapacity
		default:
			bad(LabelType, v, "expected rps, capacity (or inflight) or cpu; using rps")
		}
	}
	number := func(key string, def float64) float64 {
		v, ok := labels[key]
		if !ok {
			return def
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f <= 0 {
			bad(key, v, fmt.Sprintf("expected a number above 0; using %g", def))
			return def
		}
		return f
	}
	p.Target = number(LabelTarget, defaultTarget)
	p.Proportion = number(LabelProportion, defaultProportion)
	if p.Proportion > 1 {
		bad(LabelProportion, labels[LabelProportion], "expected at most 1; using 1")
		p.Proportion = 1
	}
	count := func(key string, def int) int {
		v, ok := labels[key]
		if !ok {
			return def
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			bad(key, v, fmt.Sprintf("expected a whole number >= 0; using %d", def))
			return def
		}
		return n
	}
	p.Min = count(LabelMin, defaultMin)
	p.Max = count(LabelMax, maxReplicas)
	if p.Max > maxReplicas {
		bad(LabelMax, labels[LabelMax], fmt.Sprintf("above the platform's limit; using %d", maxReplicas))
		p.Max = maxReplicas
	}
	if p.Max < 1 {
		bad(LabelMax, labels[LabelMax], "must be at least 1; using 1")
		p.Max = 1
	}
	if p.Min < 1 {
		// Zero is what com.openfaas.scale.zero is for; min 0 means min 1 under load.
		p.Min = 1
	}
	if p.Min > p.Max {
		bad(LabelMin, labels[LabelMin], fmt.Sprintf("above max %d; using %d", p.Max, p.Max))
		p.Min = p.Max
	}
	if v, ok := labels[LabelZero]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			bad(LabelZero, v, "expected true or false; using false")
		}
		p.Zero = b
	}
	if v, ok := labels[LabelZeroDuration]; ok {
		d, err := parseDuration(v)
		if err != nil || d <= 0 {
			bad(LabelZeroDuration, v, fmt.Sprintf("expected a duration such as 15m or whole seconds; using %s", defaultZeroDuration))
		} else {
			p.ZeroDuration = d
		}
	}
	return p, problems
}

// parseDuration accepts whole seconds ("30") or a Go duration ("30s", "15m").
func parseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}
