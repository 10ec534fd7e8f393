package integration

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/server"
)

// fakeWatchdog stands in for of-watchdog (which cannot be fetched on our
// machines): like the real one it is started with no arguments and learns
// everything from its environment; it serves /_/ready and echoes that
// environment on $port, so the test can check what the watchdog would get.
const fakeWatchdog = `import json, os, http.server
port = int(os.environ["port"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(dict(os.environ)).encode() if self.path == "/env" else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
print("fake watchdog on %d, fprocess=%s" % (port, os.environ.get("fprocess")), flush=True)
http.server.HTTPServer(("0.0.0.0", port), H).serve_forever()
`

func TestWatchdogMode(t *testing.T) {
	requireRoot(t)
	tn := setupNetwork(t)
	images := t.TempDir()
	writeImage(t, images, ref, functionScript, map[string]string{"mode": "http", "upstream_url": "http://127.0.0.1:5000"})
	wd := filepath.Join(t.TempDir(), "fwatchdog")
	if err := os.WriteFile(wd, []byte("#!"+realPython(t)+" -u\n"+fakeWatchdog), 0o755); err != nil {
		t.Fatal(err)
	}
	in := startProvider(t, server.Config{
		StateDir: t.TempDir(), ImagesDir: images,
		Bridge: tn.Bridge, BridgeCIDR: tn.CIDR, NetnsPrefix: tn.Prefix, Watchdog: wd,
		MaxReplicas: 5, ReadyTimeout: 20 * time.Second,
	})
	api := client{t: t, base: in.API.URL} // no --auth-dir: auth disabled
	ops := client{t: t, base: in.Ops.URL}

	api.expect(http.StatusAccepted, "", "POST", "/system/functions", types.FunctionDeployment{
		Service: fn, Image: ref, EnvProcess: "python3 custom.py",
	})
	waitAvailable(t, api, fn, 1, 15*time.Second)

	var env map[string]string
	if err := json.Unmarshal([]byte(api.expect(http.StatusOK, "", "GET", "/function/"+fn+"/env", nil)), &env); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"mode": "http", "upstream_url": "http://127.0.0.1:5000", "port": "8080",
		"ready_path": "/_/ready", "fprocess": "python3 custom.py",
	} {
		if env[k] != v {
			t.Errorf("watchdog env %s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["FUNCTION_PORT"]; ok {
		t.Error("FUNCTION_PORT set in watchdog mode")
	}

	sd := ops.expect(http.StatusOK, "", "GET", "/sd", nil)
	if !strings.Contains(sd, `:8081"],"labels":{"function_name":"echo","kind":"watchdog"`) ||
		!strings.Contains(sd, `:8000"],"labels":{"function_name":"echo","kind":"function"`) {
		t.Errorf("/sd in watchdog mode: %s", sd)
	}
	in.Stop(t)
	if left := tn.leftovers(t); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
