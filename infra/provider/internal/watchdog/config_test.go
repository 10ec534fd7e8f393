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
			Config{ExecTimeout: DefaultTimeout, WriteTimeout: DefaultTimeout, HealthcheckInterval: DefaultTimeout}, 0},
		{"whole seconds and durations",
			map[string]string{"max_inflight": "4", "exec_timeout": "2", "write_timeout": "1m", "healthcheck_interval": "5s"},
			Config{MaxInflight: 4, ExecTimeout: 2 * time.Second, WriteTimeout: time.Minute, HealthcheckInterval: 5 * time.Second}, 0},
		{"healthcheck_interval follows write_timeout", map[string]string{"write_timeout": "7s"},
			Config{ExecTimeout: DefaultTimeout, WriteTimeout: 7 * time.Second, HealthcheckInterval: 7 * time.Second}, 0},
		{"bad values fall back to defaults and are reported",
			map[string]string{"max_inflight": "many", "exec_timeout": "soon", "write_timeout": "-3"},
			Config{ExecTimeout: DefaultTimeout, WriteTimeout: DefaultTimeout, HealthcheckInterval: DefaultTimeout}, 3},
		{"write_timeout 0 is refused", map[string]string{"write_timeout": "0"},
			Config{ExecTimeout: DefaultTimeout, WriteTimeout: DefaultTimeout, HealthcheckInterval: DefaultTimeout}, 1},
		{"max_inflight 0 means no cap", map[string]string{"max_inflight": "0"},
			Config{ExecTimeout: DefaultTimeout, WriteTimeout: DefaultTimeout, HealthcheckInterval: DefaultTimeout}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, problems := FromEnv(c.env)
			if got != c.want || len(problems) != c.problems {
				t.Errorf("FromEnv(%v) = %+v, %q; want %+v with %d problem(s)", c.env, got, problems, c.want, c.problems)
			}
		})
	}
}

func TestInflightCap(t *testing.T) {
	r := NewReplica(Config{MaxInflight: 2, WriteTimeout: time.Second})
	if !r.TryAcquire() || !r.TryAcquire() {
		t.Fatal("two slots must be free")
	}
	if r.TryAcquire() {
		t.Fatal("a third request must be refused at max_inflight 2")
	}
	if r.WaitIdle(30 * time.Millisecond) {
		t.Fatal("WaitIdle reported idle with 2 in flight")
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		r.Release()
		r.Release()
	}()
	if !r.WaitIdle(2 * time.Second) {
		t.Fatal("WaitIdle did not see the replica go idle")
	}
	if !r.TryAcquire() {
		t.Fatal("a slot must be free again")
	}
	unlimited := NewReplica(Config{})
	for i := 0; i < 1000; i++ {
		if !unlimited.TryAcquire() {
			t.Fatal("max_inflight 0 must not cap")
		}
	}
}
