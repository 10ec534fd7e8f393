package main

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestConfigReadsTheChartsFaasNetesEnvironment(t *testing.T) {
	c, err := readConfig(env(map[string]string{
		"port": "8081", "function_namespace": "ads", "read_timeout": "60s", "write_timeout": "65",
		"image_pull_policy": "IfNotPresent", "http_probe": "true", "basic_auth": "true",
		"secret_mount_path": "/var/secrets", "readiness_probe_period_seconds": "2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8081 || c.Functions.Namespace != "ads" || c.WriteTimeout != 65*time.Second || c.ReadTimeout != time.Minute {
		t.Errorf("%+v", c)
	}
	if c.Functions.ImagePullPolicy != corev1.PullIfNotPresent || !c.Functions.HTTPProbe || c.Functions.Readiness.PeriodSeconds != 2 {
		t.Errorf("%+v", c.Functions)
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	_, err := readConfig(env(map[string]string{"port": "x", "image_pull_policy": "Sometimes", "http_probe": "maybe", "write_timeout": "soon"}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"port", "image_pull_policy", "http_probe", "write_timeout"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%v lacks %s", err, name)
		}
	}
}
