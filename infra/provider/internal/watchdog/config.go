// Package watchdog does, inside the provider, what of-watchdog does in front
// of each replica in OpenFaaS: a cap on in-flight requests (429 above it), an
// execution timeout (504), clear answers when the function cannot be reached
// (502), a graceful drain when the replica is removed, and per-replica
// metrics with of-watchdog's names. of-watchdog cannot be fetched on our
// machines, and since every invocation already passes through the provider's
// proxy, doing the work there costs no extra hop.
//
// A replica is configured exactly as of-watchdog is: from the function's
// environment (max_inflight, exec_timeout, write_timeout,
// healthcheck_interval), with of-watchdog's defaults and value syntax.
package watchdog

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout is of-watchdog's default for read_timeout, write_timeout
// and exec_timeout (shared/OPENFAAS.md section 4, of-watchdog 0.11.6).
const DefaultTimeout = 30 * time.Second

// Config is one replica's watchdog configuration.
type Config struct {
	// MaxInflight caps concurrent requests; 0 means no cap (of-watchdog's default).
	MaxInflight int
	// ExecTimeout bounds one invocation; a request header X-Timeout can only shorten it.
	ExecTimeout time.Duration
	// WriteTimeout bounds how long a removed replica may take to finish the
	// requests it accepted (of-watchdog drains for at most write_timeout).
	WriteTimeout time.Duration
	// HealthcheckInterval is how long of-watchdog keeps serving after SIGTERM
	// so that the orchestrator's health check notices; defaults to
	// WriteTimeout. Here the provider is the load balancer and takes a
	// replica out of rotation at once, so it only bounds the drain together
	// with WriteTimeout (see Drain).
	HealthcheckInterval time.Duration
}

// FromEnv reads the configuration from a replica's environment. Values are
// integer seconds or Go durations ("15", "15s", "1m30s"), as in of-watchdog;
// problems are returned together (the replica then uses the default for
// each bad value, as of-watchdog does, but the provider logs them).
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
	c := Config{
		ExecTimeout:  duration("exec_timeout", DefaultTimeout),
		WriteTimeout: duration("write_timeout", DefaultTimeout),
	}
	if c.WriteTimeout <= 0 {
		problems = append(problems, fmt.Sprintf("write_timeout must be over 0s (using %s)", DefaultTimeout))
		c.WriteTimeout = DefaultTimeout
	}
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

// Drain is the longest a removed replica waits for its accepted requests.
// of-watchdog waits healthcheck_interval, then drains for up to
// write_timeout; the provider removes the replica from rotation itself, so
// there is nothing to wait for first, and the drain uses write_timeout.
func (c Config) Drain() time.Duration { return c.WriteTimeout }
