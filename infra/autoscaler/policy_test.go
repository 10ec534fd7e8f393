package main

import (
	"testing"
	"time"
)

func TestParsePolicy(t *testing.T) {
	def := Policy{Type: TypeRPS, Target: 50, Proportion: 0.9, Min: 1, Max: 5, ZeroDuration: 15 * time.Minute}
	with := func(f func(*Policy)) Policy { p := def; f(&p); return p }
	cases := []struct {
		name     string
		labels   map[string]string
		want     Policy
		problems int
	}{
		{"no labels: not managed", nil, def, 0},
		{"min and max alone do not opt in", map[string]string{LabelMin: "1", LabelMax: "3"},
			with(func(p *Policy) { p.Max = 3 }), 0},
		{"type alone opts in with Pro's defaults", map[string]string{LabelType: "rps"},
			with(func(p *Policy) { p.Managed = true }), 0},
		{"everything set", map[string]string{
			LabelType: "capacity", LabelTarget: "8", LabelProportion: "0.75", LabelMin: "2", LabelMax: "4",
			LabelZero: "true", LabelZeroDuration: "5m"},
			Policy{Managed: true, Type: TypeCapacity, Target: 8, Proportion: 0.75, Min: 2, Max: 4, Zero: true, ZeroDuration: 5 * time.Minute}, 0},
		{"inflight is capacity, seconds are a duration", map[string]string{LabelType: "inflight", LabelZeroDuration: "30"},
			with(func(p *Policy) { p.Managed, p.Type, p.ZeroDuration = true, TypeCapacity, 30*time.Second }), 0},
		{"cpu in millicores", map[string]string{LabelType: "cpu", LabelTarget: "800"},
			with(func(p *Policy) { p.Managed, p.Type, p.Target = true, TypeCPU, 800 }), 0},
		{"max above the platform's limit is capped", map[string]string{LabelTarget: "10", LabelMax: "20"},
			with(func(p *Policy) { p.Managed, p.Target = true, 10 }), 1},
		{"min above max is lowered", map[string]string{LabelTarget: "10", LabelMin: "4", LabelMax: "2"},
			with(func(p *Policy) { p.Managed, p.Target, p.Min, p.Max = true, 10, 2, 2 }), 1},
		{"min 0 means min 1 under load", map[string]string{LabelType: "rps", LabelMin: "0", LabelZero: "true"},
			with(func(p *Policy) { p.Managed, p.Zero = true, true }), 0},
		{"every bad value reported, defaults used", map[string]string{
			LabelType: "memory", LabelTarget: "-1", LabelProportion: "lots", LabelMin: "x", LabelZero: "yes", LabelZeroDuration: "soon"},
			with(func(p *Policy) { p.Managed = true }), 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, problems := ParsePolicy(c.labels, 5)
			if got != c.want || len(problems) != c.problems {
				t.Errorf("ParsePolicy(%v) =\n %+v %q\nwant\n %+v with %d problem(s)", c.labels, got, problems, c.want, c.problems)
			}
		})
	}
}
