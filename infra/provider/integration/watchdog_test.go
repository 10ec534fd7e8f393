package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/server"
)

// TestOfWatchdog: every replica is the real of-watchdog in mode=http in
// front of fprocess. It gets its settings from the environment, answers
// its own /_/health, serves its metrics on 8081 (listed in /sd), and the
// function behind it sees the environment the watchdog was given.
func TestOfWatchdog(t *testing.T) {
	requireRoot(t)
	tn := setupNetwork(t)
	images := t.TempDir()
	writeImage(t, images, ref, functionScript, map[string]string{"mode": "http", "upstream_url": "http://127.0.0.1:5000"})
	in := startProvider(t, server.Config{
		StateDir: t.TempDir(), ImagesDir: images,
		Bridge: tn.Bridge, BridgeCIDR: tn.CIDR, NetnsPrefix: tn.Prefix,
		MaxReplicas: 5, ReadyTimeout: 20 * time.Second,
	})
	api := client{t: t, base: in.API.URL} // no --auth-dir: auth disabled
	ops := client{t: t, base: in.Ops.URL}

	api.expect(http.StatusAccepted, "", "POST", "/system/functions", types.FunctionDeployment{
		Service: fn, Image: ref, EnvVars: map[string]string{"exec_timeout": "7s"},
	})
	waitAvailable(t, api, fn, 1, 15*time.Second)

	var env map[string]string
	if err := json.Unmarshal([]byte(api.expect(http.StatusOK, "", "GET", "/function/"+fn+"/env", nil)), &env); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"mode": "http", "upstream_url": "http://127.0.0.1:5000", "port": "8080", "exec_timeout": "7s",
		"ready_path": "/_/ready", "healthcheck_interval": "1s",
	} {
		if env[k] != v {
			t.Errorf("watchdog env %s = %q, want %q", k, env[k], v)
		}
	}
	if !strings.HasSuffix(env["fprocess"], " -u server.py") {
		t.Errorf("fprocess = %q", env["fprocess"])
	}
	// of-watchdog's own health endpoint (its lock file in the replica's TMPDIR).
	api.expect(http.StatusOK, "OK", "GET", "/function/"+fn+"/_/health", nil)

	// The replica's process is the watchdog itself.
	r := replicasOf(in.P, fn)[0]
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", r.PID)); err != nil || filepath.Base(exe) != "of-watchdog" {
		t.Errorf("replica %s runs %q (%v), want of-watchdog", r.Replica, exe, err)
	}

	sd := ops.expect(http.StatusOK, "", "GET", "/sd", nil)
	target := r.IP + ":8081"
	if !strings.Contains(sd, `"targets":["`+target+`"],"labels":{"function_name":"echo","kind":"watchdog"`) ||
		!strings.Contains(sd, `:8000"],"labels":{"function_name":"echo","kind":"function"`) {
		t.Errorf("/sd: %s", sd)
	}
	metrics := client{t: t, base: "http://" + target}.expect(http.StatusOK, "", "GET", "/metrics", nil)
	for _, want := range []string{`http_requests_total{code="200",method="get"} 1`, "http_requests_in_flight 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("of-watchdog metrics lack %q", want)
		}
	}
	in.Stop(t)
	if left := tn.leftovers(t); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
