package watchdog

import (
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	cases := []struct {
		name     string
		env      map[string]string
		want     Config
		problems int
	}{
		{"of-watchdog defaults", nil,
			Config{WriteTimeout: DefaultTimeout, HealthcheckInterval: DefaultTimeout}, 0},
		{"whole seconds and durations",
			map[string]string{"max_inflight": "4", "write_timeout": "1m", "healthcheck_interval": "5s"},
			Config{MaxInflight: 4, WriteTimeout: time.Minute, HealthcheckInterval: 5 * time.Second}, 0},
		{"healthcheck_interval follows write_timeout", map[string]string{"write_timeout": "7"},
			Config{WriteTimeout: 7 * time.Second, HealthcheckInterval: 7 * time.Second}, 0},
		{"bad values fall back to defaults and are reported",
			map[string]string{"max_inflight": "many", "healthcheck_interval": "soon", "write_timeout": "-3"},
			Config{WriteTimeout: DefaultTimeout, HealthcheckInterval: DefaultTimeout}, 3},
		{"max_inflight 0 means no cap", map[string]string{"max_inflight": "0"},
			Config{WriteTimeout: DefaultTimeout, HealthcheckInterval: DefaultTimeout}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, problems := FromEnv(c.env)
			if got != c.want || len(problems) != c.problems {
				t.Errorf("FromEnv(%v) = %+v, %q; want %+v with %d problem(s)", c.env, got, problems, c.want, c.problems)
			}
		})
	}
	if b := (Config{WriteTimeout: 10 * time.Second, HealthcheckInterval: time.Second}).StopBound(); b != 11*time.Second {
		t.Errorf("StopBound = %s, want 11s", b)
	}
}
