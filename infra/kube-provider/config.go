package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"adserver/kubeprovider/internal/functions"
	corev1 "k8s.io/api/core/v1"
)

// config is read once at start from the environment variables the OpenFaaS chart gives its
// provider container (faas-netes's names), so this provider runs in faas-netes's place
// without changing the chart.
type config struct {
	Port            int
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	BasicAuth       bool
	SecretMountPath string
	Functions       functions.Options
}

// readConfig reports every invalid variable at once.
func readConfig(lookup func(string) (string, bool)) (config, error) {
	var problems []string
	get := func(name, fallback string) string {
		if v, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return fallback
	}
	integer := func(name string, fallback int, min int) int {
		v := get(name, strconv.Itoa(fallback))
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			problems = append(problems, fmt.Sprintf("%s=%q: want a whole number >= %d", name, v, min))
		}
		return n
	}
	boolean := func(name string, fallback bool) bool {
		v := get(name, strconv.FormatBool(fallback))
		b, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: want true or false", name, v))
		}
		return b
	}
	duration := func(name string, fallback time.Duration) time.Duration {
		v := get(name, fallback.String())
		d, err := time.ParseDuration(v)
		if err != nil {
			n, errN := strconv.Atoi(v) // the chart's older values give plain seconds
			if errN != nil {
				problems = append(problems, fmt.Sprintf("%s=%q: want a duration such as 60s", name, v))
			}
			d = time.Duration(n) * time.Second
		}
		return d
	}
	probe := func(kind string) functions.Probe {
		return functions.Probe{
			InitialDelaySeconds: int32(integer(kind+"_probe_initial_delay_seconds", 2, 0)),
			TimeoutSeconds:      int32(integer(kind+"_probe_timeout_seconds", 1, 1)),
			PeriodSeconds:       int32(integer(kind+"_probe_period_seconds", 2, 1)),
			SuccessThreshold:    int32(integer(kind+"_probe_success_threshold", 1, 1)),
			FailureThreshold:    int32(integer(kind+"_probe_failure_threshold", 3, 1)),
		}
	}
	c := config{
		Port:            integer("port", 8081, 1),
		ReadTimeout:     duration("read_timeout", 60*time.Second),
		WriteTimeout:    duration("write_timeout", 60*time.Second),
		BasicAuth:       boolean("basic_auth", true),
		SecretMountPath: get("secret_mount_path", "/var/secrets"),
		Functions: functions.Options{
			Namespace:       get("function_namespace", "openfaas-fn"),
			ImagePullPolicy: corev1.PullPolicy(get("image_pull_policy", string(corev1.PullAlways))),
			HTTPProbe:       boolean("http_probe", true),
			SetNonRootUser:  boolean("set_nonroot_user", false),
			Readiness:       probe("readiness"),
			Liveness:        probe("liveness"),
		},
	}
	switch c.Functions.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		problems = append(problems, fmt.Sprintf("image_pull_policy=%q: want Always, IfNotPresent or Never", c.Functions.ImagePullPolicy))
	}
	if c.Port > 65535 {
		problems = append(problems, fmt.Sprintf("port=%d: want at most 65535", c.Port))
	}
	if len(problems) > 0 {
		return c, errors.New("invalid settings: " + strings.Join(problems, "; "))
	}
	return c, nil
}
