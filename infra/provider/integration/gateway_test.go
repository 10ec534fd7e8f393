package integration

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/server"
)

// binary returns the path in env var key, else the orchestrator's build in
// the repository's .local/bin (the gateway and faas-cli are built by
// `make up`/`make test`, not by this module). Outside CI a missing binary
// skips the test; in CI (CI=true) it fails it, since CI always builds them.
func binary(t *testing.T, key, name string) string {
	t.Helper()
	p := localBinary(key, name)
	if st, err := os.Stat(p); err != nil || st.IsDir() {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (set %s): CI must run the test behind the real binary", p, key)
		}
		t.Skipf("%s not found (set %s): skipping the test behind the real binary", p, key)
	}
	return p
}

// privateNetnsEnv marks a test binary re-run inside its own network namespace.
const privateNetnsEnv = "ADS_PROVIDER_TEST_PRIVATE_NETNS"

// rerunInPrivateNetns runs test again in a fresh network namespace, where
// the gateway's hard-coded ports are free even when a developer's gateway
// is running on this machine.
func rerunInPrivateNetns(t *testing.T, test string) {
	t.Helper()
	ns := "tgw" + randHex(3)
	run(t, "ip", "netns", "add", ns)
	defer func() { _ = exec.Command("ip", "netns", "del", ns).Run() }()
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^"+test+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), privateNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("ports 8080/8082 are busy here: ran %s in network namespace %s:\n%s", test, ns, out)
	if err != nil {
		t.Fatalf("%s in a private network namespace: %v", test, err)
	}
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestBehindGateway puts the real OpenFaaS gateway (ports 8080/8082 are
// hard-coded in it) in front of an in-process provider and drives it with
// faas-cli, as a developer would.
func TestBehindGateway(t *testing.T) {
	requireRoot(t)
	gwBin := binary(t, "ADS_GATEWAY_BIN", "gateway")
	if !portFree(8080) || !portFree(8082) {
		if os.Getenv(privateNetnsEnv) != "" {
			t.Fatal("ports 8080/8082 busy even in a private network namespace")
		}
		rerunInPrivateNetns(t, "TestBehindGateway")
		return
	}
	tn := setupNetwork(t)
	images := t.TempDir()
	writeImage(t, images, ref, functionScript, nil)
	authDir := writeAuth(t, user, pass)
	in := startProvider(t, server.Config{
		StateDir: t.TempDir(), ImagesDir: images, AuthDir: authDir,
		Bridge: tn.Bridge, BridgeCIDR: tn.CIDR, NetnsPrefix: tn.Prefix,
		MaxReplicas: 5, ReadyTimeout: 20 * time.Second, UpstreamTimeout: time.Minute,
	})

	// The CE gateway's list handler dereferences a nil result when its
	// Prometheus query fails, so give it an empty Prometheus.
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	defer prom.Close()
	promPort := prom.Listener.Addr().(*net.TCPAddr).Port

	var gwOut bytes.Buffer
	gw := exec.Command(gwBin)
	gw.Dir = t.TempDir()
	gw.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"functions_provider_url=" + in.API.URL + "/",
		"basic_auth=true",
		"secret_mount_path=" + authDir,
		"faas_prometheus_host=127.0.0.1",
		fmt.Sprintf("faas_prometheus_port=%d", promPort),
		"scale_from_zero=true",
	}
	gw.Stdout, gw.Stderr = &gwOut, &gwOut
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = gw.Process.Kill()
		_ = gw.Wait()
		if t.Failed() {
			t.Logf("gateway output:\n%s", gwOut.String())
		}
	})
	const gwURL = "http://127.0.0.1:8080"
	g := client{t: t, base: gwURL, user: user, pass: pass}
	ga := client{t: t, base: gwURL}
	eventually(t, 10*time.Second, "gateway healthy", func() (bool, string) {
		resp, err := http.Get(gwURL + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})

	t.Run("API through the gateway", func(t *testing.T) {
		ga.expect(http.StatusUnauthorized, "", "GET", "/system/functions", nil)
		g.expect(http.StatusAccepted, "", "POST", "/system/functions", types.FunctionDeployment{Service: fn, Image: ref})
		waitAvailable(t, g, fn, 1, 15*time.Second)
		g.expect(http.StatusOK, `"name":"`+fn+`"`, "GET", "/system/functions", nil)
		ga.expect(http.StatusOK, "hello from "+fn+"-", "GET", "/function/"+fn, nil)
		ga.expect(http.StatusOK, "hello from", "POST", "/function/"+fn+"/a/b?c=d", "body")
		g.expect(http.StatusAccepted, "", "POST", "/system/scale-function/"+fn, map[string]any{"serviceName": fn, "replicas": 2})
		waitAvailable(t, g, fn, 2, 15*time.Second)
		g.expect(http.StatusOK, `"provider":"ads-provider"`, "GET", "/system/info", nil)
		g.expect(http.StatusOK, "openfaas-fn", "GET", "/system/namespaces", nil)
		ga.expect(http.StatusOK, "", "GET", "/function/"+fn+"/gw-log-marker", nil)
		eventually(t, 3*time.Second, "logs through the gateway", func() (bool, string) {
			_, b := g.do("GET", "/system/logs?name="+fn+"&tail=5&follow=false", nil)
			return strings.Contains(b, "invoked /gw-log-marker"), b
		})
		g.expect(http.StatusAccepted, "", "DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: fn})
		g.expect(http.StatusNotFound, "", "GET", "/system/function/"+fn, nil)
	})

	t.Run("scaled to zero through the provider, woken by the gateway", func(t *testing.T) {
		// What the autoscaler does for com.openfaas.scale.zero=true: the CE gateway clamps
		// scale requests to 1..5, so zero goes to the provider; the gateway's own
		// scale_from_zero brings the function back on its next request.
		p := client{t: t, base: in.API.URL, user: user, pass: pass}
		g.expect(http.StatusAccepted, "", "POST", "/system/functions", types.FunctionDeployment{Service: fn, Image: ref})
		waitAvailable(t, g, fn, 1, 15*time.Second)
		p.expect(http.StatusAccepted, "", "POST", "/system/scale-function/"+fn, map[string]any{"serviceName": fn, "replicas": 0})
		waitAvailable(t, g, fn, 0, 15*time.Second)
		ga.expect(http.StatusOK, "hello from "+fn+"-", "GET", "/function/"+fn, nil)
		if st := status(t, g, fn); st.Replicas != 1 || st.AvailableReplicas != 1 {
			t.Errorf("after the wake-up: %d replicas, %d available", st.Replicas, st.AvailableReplicas)
		}
		g.expect(http.StatusAccepted, "", "DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: fn})
	})

	t.Run("faas-cli", func(t *testing.T) {
		cli := binary(t, "ADS_FAAS_CLI_BIN", "faas-cli")
		dir := t.TempDir()
		stack := fmt.Sprintf(`version: 1.0
provider:
  name: openfaas
  gateway: %s
functions:
  hello:
    image: %s
    environment:
      GREETING: hi
    secrets:
      - cli-secret
    labels:
      com.openfaas.scale.min: "2"
`, gwURL, ref)
		if err := os.WriteFile(filepath.Join(dir, "stack.yml"), []byte(stack), 0o644); err != nil {
			t.Fatal(err)
		}
		faas := func(stdin string, args ...string) string {
			t.Helper()
			cmd := exec.Command(cli, args...)
			cmd.Dir = dir
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "OPENFAAS_CONFIG=" + filepath.Join(dir, "config.yml")}
			cmd.Stdin = strings.NewReader(stdin)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("faas-cli %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		faas(pass, "login", "-g", gwURL, "-u", user, "--password-stdin")
		faas("sekrit", "secret", "create", "cli-secret", "-g", gwURL)
		if out := faas("", "deploy", "-f", "stack.yml", "--read-template=false"); !strings.Contains(out, "202 Accepted") {
			t.Fatalf("deploy: %s", out)
		}
		waitAvailable(t, g, "hello", 2, 15*time.Second)
		// A second deploy is an update (PUT), a rolling restart.
		if out := faas("", "deploy", "-f", "stack.yml", "--read-template=false"); !strings.Contains(out, "202 Accepted") {
			t.Fatalf("redeploy: %s", out)
		}
		if out := faas("", "list", "-g", gwURL); !strings.Contains(out, "hello") {
			t.Errorf("list: %s", out)
		}
		eventually(t, 15*time.Second, "describe shows the function ready", func() (bool, string) {
			out := faas("", "describe", "hello", "-g", gwURL)
			return strings.Contains(out, "Available Replicas: 2") && strings.Contains(out, "GREETING"), out
		})
		if out := faas("payload", "invoke", "hello", "-g", gwURL); !strings.Contains(out, "hello from hello-") {
			t.Errorf("invoke: %s", out)
		}
		if out := faas("", "logs", "hello", "-g", gwURL, "--tail=false"); !strings.Contains(out, "invoked /") {
			t.Errorf("logs: %s", out)
		}
		faas("", "remove", "hello", "-g", gwURL)
		g.expect(http.StatusNotFound, "", "GET", "/system/function/hello", nil)
	})

	in.Stop(t)
	if left := tn.leftovers(t); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
