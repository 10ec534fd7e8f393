// Package watchdog reads, from a replica's environment, the of-watchdog
// settings that its supervisor needs: how long the watchdog takes to stop
// (healthcheck_interval, then a drain of at most write_timeout), and its
// max_inflight for `make status`. of-watchdog itself enforces all of them
// in the replica; the provider never imitates it.
package watchdog

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is of-watchdog's default for read_timeout, write_timeout
// and exec_timeout (of-watchdog 0.11.6, config/config.go).
const DefaultTimeout = 30 * time.Second

// PlatformHealthcheckInterval is what the provider sets healthcheck_interval
// to when the function does not: of-watchdog keeps accepting requests this
// long after SIGTERM, so that a load balancer probing it notices first. The
// provider is that load balancer and takes a replica out of rotation before
// it sends SIGTERM, so a short wait is enough (of-watchdog's own default,
// write_timeout, would make every scale-in wait 30 s before draining).
const PlatformHealthcheckInterval = "1s"

// Config is what the supervisor knows of one replica's watchdog.
type Config struct {
	// MaxInflight is of-watchdog's cap on concurrent requests; 0 means none.
	MaxInflight int
	// WriteTimeout bounds of-watchdog's drain after SIGTERM.
	WriteTimeout time.Duration
	// HealthcheckInterval is how long of-watchdog keeps serving after
	// SIGTERM before it drains; it defaults to WriteTimeout.
	HealthcheckInterval time.Duration
}

// FromEnv reads the configuration as of-watchdog reads it: integer seconds
// or Go durations ("15", "15s", "1m30s"), of-watchdog's defaults for
// missing values. Values of-watchdog would not accept are returned as
// problems (for the provider's log) and read as the default.
func FromEnv(env map[string]string) (Config, []string) {
	var problems []string
	duration := func(key string, def time.Duration) time.Duration {
		v, ok := env[key]
		if !ok || strings.TrimSpace(v) == "" {
			return def
		}
		d, err := parseDuration(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: %v (using %s)", key, v, err, def))
			return def
		}
		return d
	}
	c := Config{WriteTimeout: duration("write_timeout", DefaultTimeout)}
	c.HealthcheckInterval = duration("healthcheck_interval", c.WriteTimeout)
	if v, ok := env["max_inflight"]; ok && strings.TrimSpace(v) != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			problems = append(problems, fmt.Sprintf("max_inflight=%q: not a whole number >= 0 (no cap)", v))
		} else {
			c.MaxInflight = n
		}
	}
	return c, problems
}

// parseDuration accepts whole seconds ("10") or a Go duration ("10s").
func parseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("negative")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("not seconds or a duration")
	}
	if d < 0 {
		return 0, fmt.Errorf("negative")
	}
	return d, nil
}

// StopBound is the longest of-watchdog takes to exit after SIGTERM when
// its requests finish in time: it keeps serving for healthcheck_interval,
// then drains for at most write_timeout.
func (c Config) StopBound() time.Duration { return c.HealthcheckInterval + c.WriteTimeout }
