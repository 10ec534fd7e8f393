package api

import (
	"strings"
	"testing"

	"github.com/openfaas/faas-provider/types"
)

func TestValidateDeployment(t *testing.T) {
	labels := func(v string) *map[string]string { m := map[string]string{ScaleMinLabel: v}; return &m }
	ok := types.FunctionDeployment{Service: "noop", Image: "ads/noop:0.1.0", Secrets: []string{"api-key"}, EnvVars: map[string]string{"A": "b"}}
	if n, err := validateDeployment(&ok, 5); err != nil || n != 1 {
		t.Fatalf("valid request: %d %v", n, err)
	}
	withMin := ok
	withMin.Labels = labels("3")
	if n, err := validateDeployment(&withMin, 5); err != nil || n != 3 {
		t.Errorf("scale.min 3: %d %v", n, err)
	}
	bad := map[string]func(d *types.FunctionDeployment){
		"invalid name":      func(d *types.FunctionDeployment) { d.Service = "Bad_Name" },
		"missing name":      func(d *types.FunctionDeployment) { d.Service = "" },
		"long name":         func(d *types.FunctionDeployment) { d.Service = strings.Repeat("a", 41) },
		"foreign namespace": func(d *types.FunctionDeployment) { d.Namespace = "default" },
		"missing image":     func(d *types.FunctionDeployment) { d.Image = "" },
		"dot image":         func(d *types.FunctionDeployment) { d.Image = ".." },
		"bad secret":        func(d *types.FunctionDeployment) { d.Secrets = []string{"../etc"} },
		"duplicate secret":  func(d *types.FunctionDeployment) { d.Secrets = []string{"a", "a"} },
		"bad env name":      func(d *types.FunctionDeployment) { d.EnvVars = map[string]string{"A=B": "x"} },
		"NUL in env":        func(d *types.FunctionDeployment) { d.EnvVars = map[string]string{"A": "x\x00"} },
		"scale.min too big": func(d *types.FunctionDeployment) { d.Labels = labels("6") },
		"scale.min zero":    func(d *types.FunctionDeployment) { d.Labels = labels("0") },
		"scale.min not int": func(d *types.FunctionDeployment) { d.Labels = labels("two") },
	}
	for name, mutate := range bad {
		d := ok
		mutate(&d)
		if _, err := validateDeployment(&d, 5); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestValidateScale(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	for _, c := range []struct {
		req  scaleRequest
		want int
		ok   bool
	}{
		{scaleRequest{Replicas: n(0)}, 0, true},
		{scaleRequest{Replicas: n(5)}, 5, true},
		{scaleRequest{Replicas: n(3), Namespace: "openfaas-fn"}, 3, true},
		{scaleRequest{Replicas: n(-1)}, 0, false},
		{scaleRequest{Replicas: n(6)}, 0, false},
		{scaleRequest{}, 0, false},
		{scaleRequest{Replicas: n(1), Namespace: "x"}, 0, false},
	} {
		got, err := validateScale(c.req, 5)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("%+v: got %d, %v", c.req, got, err)
		}
	}
}
