// Package integration runs the provider in-process against real network
// namespaces, a throwaway bridge and Python replicas behind the real
// of-watchdog, and, when the binaries are present, behind the real OpenFaaS
// gateway and faas-cli.
package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/netns"
	"adserver/provider/internal/replicas"
	"adserver/provider/internal/server"
)

const (
	user = "admin"
	pass = "test-password"
	fn   = "echo"
	ref  = "ads/echo:0.1.0"
)

func status(t *testing.T, c client, name string) types.FunctionStatus {
	t.Helper()
	var st types.FunctionStatus
	code, body := c.do("GET", "/system/function/"+name, nil)
	if code != http.StatusOK {
		t.Fatalf("status of %s: %d %s", name, code, body)
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("status JSON: %v: %s", err, body)
	}
	return st
}

func waitAvailable(t *testing.T, c client, name string, n int, timeout time.Duration) time.Duration {
	t.Helper()
	return eventually(t, timeout, fmt.Sprintf("%s has %d available replicas", name, n), func() (bool, string) {
		st := status(t, c, name)
		return st.AvailableReplicas == uint64(n) && st.Replicas == uint64(n), fmt.Sprintf("%d/%d", st.AvailableReplicas, st.Replicas)
	})
}

func replicasOf(p *server.Provider, name string) []replicas.ReplicaInfo {
	var out []replicas.ReplicaInfo
	for _, r := range p.Supervisor().Replicas() {
		if r.Function == name {
			out = append(out, r)
		}
	}
	return out
}

var restartsRE = regexp.MustCompile(`(?m)^provider_replica_restarts_total\{function_name="` + fn + `"\} (\S+)$`)

func restartCount(t *testing.T, ops client) float64 {
	t.Helper()
	_, body := ops.do("GET", "/metrics", nil)
	m := restartsRE.FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func TestProviderEndToEnd(t *testing.T) {
	requireRoot(t)
	start := time.Now()
	tn := setupNetwork(t)
	images := t.TempDir()
	stateDir := t.TempDir()
	writeImage(t, images, ref, functionScript, map[string]string{"FROM_IMAGE": "yes"})
	t.Setenv("ADS_LEAK_CANARY", "host-only")

	in := startProvider(t, server.Config{
		StateDir: stateDir, ImagesDir: images, AuthDir: writeAuth(t, user, pass),
		Bridge: tn.Bridge, BridgeCIDR: tn.CIDR, NetnsPrefix: tn.Prefix,
		MaxReplicas: 5, ReadyTimeout: 20 * time.Second, UpstreamTimeout: time.Minute, LogsTimeout: 3 * time.Second,
	})
	api := client{t: t, base: in.API.URL, user: user, pass: pass}
	anon := client{t: t, base: in.API.URL}
	ops := client{t: t, base: in.Ops.URL}
	// The provider pins the bridge's address at start-up; otherwise the bridge would take
	// the lowest MAC of its ports, and every replica added or removed would change the
	// gateway address the other replicas have cached (their answers would go nowhere).
	if got, want := tn.mac(t), netns.BridgeMAC(tn.Bridge); got != want {
		t.Fatalf("bridge address after start-up: %s, want the pinned %s", got, want)
	}

	t.Run("auth, health, info, namespaces", func(t *testing.T) {
		anon.expect(http.StatusUnauthorized, "", "GET", "/system/functions", nil)
		client{t: t, base: in.API.URL, user: user, pass: "wrong"}.expect(http.StatusUnauthorized, "", "GET", "/system/info", nil)
		anon.expect(http.StatusOK, "OK", "GET", "/healthz", nil)
		ops.expect(http.StatusOK, "OK", "GET", "/healthz", nil)
		api.expect(http.StatusOK, `"provider":"ads-provider"`, "GET", "/system/info", nil)
		api.expect(http.StatusOK, `["openfaas-fn"]`, "GET", "/system/namespaces", nil)
		api.expect(http.StatusOK, "[]", "GET", "/system/functions", nil)
	})

	t.Run("secrets", func(t *testing.T) {
		api.expect(http.StatusAccepted, "", "POST", "/system/secrets", types.Secret{Name: "api-key", Value: "v1"})
		api.expect(http.StatusConflict, "already exists", "POST", "/system/secrets", types.Secret{Name: "api-key", Value: "v1"})
		api.expect(http.StatusAccepted, "", "PUT", "/system/secrets", types.Secret{Name: "api-key", Value: "s3cr3t"})
		api.expect(http.StatusNotFound, "not found", "PUT", "/system/secrets", types.Secret{Name: "ghost", Value: "x"})
		api.expect(http.StatusNotFound, "not found", "DELETE", "/system/secrets", types.Secret{Name: "ghost"})
		api.expect(http.StatusBadRequest, "invalid secret name", "POST", "/system/secrets", types.Secret{Name: "../etc", Value: "x"})
		api.expect(http.StatusAccepted, "", "POST", "/system/secrets", types.Secret{Name: "raw", RawValue: []byte{0, 1, 2}})
		api.expect(http.StatusOK, `"name":"api-key"`, "GET", "/system/secrets", nil)
		api.expect(http.StatusAccepted, "", "DELETE", "/system/secrets", types.Secret{Name: "raw"})
	})

	t.Run("deploy and invoke", func(t *testing.T) {
		api.expect(http.StatusAccepted, "", "POST", "/system/functions", types.FunctionDeployment{
			Service: fn, Image: ref, EnvVars: map[string]string{"FOO": "bar"}, Secrets: []string{"api-key"},
		})
		api.expect(http.StatusConflict, "already exists", "POST", "/system/functions", types.FunctionDeployment{Service: fn, Image: ref})
		took := waitAvailable(t, api, fn, 1, 15*time.Second)
		t.Logf("first replica ready after %s", took)

		body := anon.expect(http.StatusOK, "hello from "+fn+"-", "GET", "/function/"+fn, nil)
		anon.expect(http.StatusOK, "hello from", "POST", "/function/"+fn+".openfaas-fn/sub/path?x=1", "payload")
		_ = body

		var env map[string]string
		if err := json.Unmarshal([]byte(anon.expect(http.StatusOK, "", "GET", "/function/"+fn+"/env", nil)), &env); err != nil {
			t.Fatal(err)
		}
		rs := replicasOf(in.P, fn)
		if len(rs) != 1 {
			t.Fatalf("replicas = %+v", rs)
		}
		replicaDir := filepath.Join(stateDir, "replicas", rs[0].Replica)
		for k, v := range map[string]string{
			"FOO": "bar", "FROM_IMAGE": "yes", "OPENFAAS_NAME": fn, "HOSTNAME": rs[0].Replica,
			"FUNCTION_METRICS_PORT": "8000", "port": "8080", "ready_path": "/_/ready", "mode": "http",
			"TMPDIR": filepath.Join(replicaDir, "tmp"), "OPENFAAS_SECRETS_DIR": filepath.Join(replicaDir, "secrets"),
		} {
			if env[k] != v {
				t.Errorf("replica env %s = %q, want %q", k, env[k], v)
			}
		}
		if _, leaked := env["ADS_LEAK_CANARY"]; leaked {
			t.Error("the provider's environment leaked into the replica")
		}
		anon.expect(http.StatusOK, `"value": "s3cr3t", "mode": "0o400"`, "GET", "/function/"+fn+"/secret/api-key", nil)

		st := status(t, api, fn)
		if st.Image != ref || st.Namespace != "openfaas-fn" || st.EnvVars["FOO"] != "bar" || len(st.Secrets) != 1 || st.CreatedAt.IsZero() {
			t.Errorf("status = %+v", st)
		}
		api.expect(http.StatusOK, `"name":"`+fn+`"`, "GET", "/system/functions", nil)
	})

	t.Run("the invocation listener invokes and serves no system route", func(t *testing.T) {
		// What a function reaches instead of the gateway (serve calling bid): invocations
		// only, never the API that deploys, scales or reads secrets, with or without a password.
		direct := client{t: t, base: in.Invoke.URL}
		withAuth := client{t: t, base: in.Invoke.URL, user: user, pass: pass}
		direct.expect(http.StatusOK, "hello from "+fn+"-", "GET", "/function/"+fn, nil)
		direct.expect(http.StatusOK, "hello from", "POST", "/function/"+fn+"/sub/path?x=1", "payload")
		direct.expect(http.StatusOK, "OK", "GET", "/healthz", nil)
		for _, path := range []string{"/system/functions", "/system/secrets", "/system/info", "/system/scale-function/" + fn, "/metrics"} {
			withAuth.expect(http.StatusNotFound, "no route", "GET", path, nil)
		}
		withAuth.expect(http.StatusNotFound, "no route", "POST", "/system/functions", types.FunctionDeployment{Service: "intruder", Image: ref})
	})

	t.Run("scale to 3, round robin over distinct replicas", func(t *testing.T) {
		api.expect(http.StatusAccepted, "", "POST", "/system/scale-function/"+fn, map[string]any{"serviceName": fn, "replicas": 3})
		waitAvailable(t, api, fn, 3, 15*time.Second)
		seen := map[string]int{}
		for i := 0; i < 12; i++ {
			seen[strings.TrimPrefix(anon.expect(http.StatusOK, "hello from", "GET", "/function/"+fn, nil), "hello from ")]++
		}
		if len(seen) != 3 {
			t.Fatalf("answers came from %d replicas, want 3: %v", len(seen), seen)
		}
		for host, n := range seen {
			if n != 4 {
				t.Errorf("round robin uneven: %s answered %d of 12", host, n)
			}
		}
		// Distinct namespaces and addresses.
		ips := map[string]bool{}
		for _, r := range replicasOf(in.P, fn) {
			ips[r.IP] = true
		}
		if len(ips) != 3 {
			t.Errorf("replica addresses not distinct: %v", ips)
		}
	})

	t.Run("service discovery and metrics", func(t *testing.T) {
		var groups []struct {
			Targets []string          `json:"targets"`
			Labels  map[string]string `json:"labels"`
		}
		if err := json.Unmarshal([]byte(ops.expect(http.StatusOK, "", "GET", "/sd", nil)), &groups); err != nil {
			t.Fatal(err)
		}
		// Per replica: the function's own port and its of-watchdog's.
		if len(groups) != 6 {
			t.Fatalf("/sd has %d groups, want 6 (3 replicas x function + watchdog): %+v", len(groups), groups)
		}
		pages := 0
		for _, g := range groups {
			if len(g.Targets) != 1 || g.Labels["function_name"] != fn || !strings.HasPrefix(g.Labels["replica"], fn+"-") {
				t.Errorf("bad target group %+v", g)
				continue
			}
			switch g.Labels["kind"] {
			case "function":
				if !strings.HasSuffix(g.Targets[0], ":8000") {
					t.Errorf("function target %+v", g)
				}
			case "watchdog":
				if !strings.HasSuffix(g.Targets[0], ":8081") {
					t.Errorf("watchdog target %+v", g)
					continue
				}
				page := client{t: t, base: "http://" + g.Targets[0]}.expect(http.StatusOK, "", "GET", "/metrics", nil)
				if strings.Contains(page, `http_requests_total{code="200",method="get"}`) && strings.Contains(page, "http_requests_in_flight 0") {
					pages++
				}
			default:
				t.Errorf("unknown kind %+v", g)
			}
		}
		// The round-robin test above invoked every replica.
		if pages != 3 {
			t.Errorf("%d of 3 replicas' of-watchdog metrics show requests", pages)
		}
		m := ops.expect(http.StatusOK, "", "GET", "/metrics", nil)
		for _, want := range []string{
			`provider_replicas{function_name="echo"} 3`,
			`provider_available_replicas{function_name="echo"} 3`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("killed replica is restarted within 5s", func(t *testing.T) {
		before := restartCount(t, ops)
		victim := replicasOf(in.P, fn)[0]
		if victim.PID <= 0 {
			t.Fatalf("no pid for %+v", victim)
		}
		killed := time.Now()
		if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		took := eventually(t, 5*time.Second, "restart counted and replica ready again", func() (bool, string) {
			n := restartCount(t, ops)
			st := status(t, api, fn)
			var ready bool
			for _, r := range replicasOf(in.P, fn) {
				if r.Replica == victim.Replica {
					ready = r.Ready && r.PID != victim.PID && r.PID > 0
				}
			}
			return n == before+1 && ready && st.AvailableReplicas == 3, fmt.Sprintf("restarts %v, available %d, victim ready %v", n, st.AvailableReplicas, ready)
		})
		t.Logf("replica back %s after SIGKILL", took)
		if time.Since(killed) > 5*time.Second {
			t.Errorf("restart took %s", time.Since(killed))
		}
		// Same namespace and address: it is the same replica, restarted.
		for _, r := range replicasOf(in.P, fn) {
			if r.Replica == victim.Replica && r.IP != victim.IP {
				t.Errorf("restarted replica moved from %s to %s", victim.IP, r.IP)
			}
		}
	})

	t.Run("logs", func(t *testing.T) {
		anon.expect(http.StatusOK, "", "GET", "/function/"+fn+"/log-marker-1", nil)
		body := eventually(t, 3*time.Second, "log line stored", func() (bool, string) {
			_, b := api.do("GET", "/system/logs?name="+fn+"&tail=3&follow=false", nil)
			return strings.Contains(b, "invoked /log-marker-1"), b
		})
		_ = body
		_, b := api.do("GET", "/system/logs?name="+fn+"&tail=2&follow=false", nil)
		lines := strings.Split(strings.TrimSpace(b), "\n")
		if len(lines) != 2 {
			t.Fatalf("tail=2 returned %d lines: %q", len(lines), b)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"name", "namespace", "instance", "timestamp", "text"} {
			if _, ok := m[k]; !ok {
				t.Errorf("log line lacks %q: %s", k, lines[1])
			}
		}
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		if _, b := api.do("GET", "/system/logs?name="+fn+"&follow=false&since="+future, nil); strings.TrimSpace(b) != "" {
			t.Errorf("since in the future returned %q", b)
		}

		// follow: a live line arrives on an open stream.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", in.API.URL+"/system/logs?name="+fn+"&tail=0&follow=true", nil)
		req.SetBasicAuth(user, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
			t.Errorf("Content-Type = %q", ct)
		}
		go func() {
			time.Sleep(200 * time.Millisecond)
			_, _ = http.Get(in.API.URL + "/function/" + fn + "/log-marker-follow")
		}()
		sc := bufio.NewScanner(resp.Body)
		found := false
		for sc.Scan() {
			if strings.Contains(sc.Text(), "invoked /log-marker-follow") {
				found = true
				break
			}
		}
		if !found {
			t.Error("followed log stream did not deliver the live line")
		}
		cancel()

		// A followed stream ends by itself at --logs-timeout (3s here), as faas-cli's
		// "up to 30s" promises with the default.
		follow, _ := http.NewRequest("GET", in.API.URL+"/system/logs?name="+fn+"&tail=1&follow=true", nil)
		follow.SetBasicAuth(user, pass)
		long, err := (&http.Client{Timeout: 20 * time.Second}).Do(follow)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, long.Body); err != nil {
			t.Errorf("the followed stream did not end by itself: %v", err)
		}
		long.Body.Close()

		api.expect(http.StatusNotFound, "not found", "GET", "/system/logs?name=ghost", nil)
		api.expect(http.StatusBadRequest, "required", "GET", "/system/logs", nil)
		if _, err := os.Stat(filepath.Join(stateDir, "logs", fn+".ndjson")); err != nil {
			t.Errorf("log file: %v", err)
		}
	})

	t.Run("bad input gets 4xx with a message", func(t *testing.T) {
		cases := []struct {
			code         int
			want         string
			method, path string
			body         any
		}{
			{400, "malformed JSON", "POST", "/system/functions", `{"service":`},
			{400, "empty", "POST", "/system/functions", ""},
			{400, "invalid function name", "POST", "/system/functions", types.FunctionDeployment{Service: "Bad_Name", Image: ref}},
			{400, "invalid function name", "POST", "/system/functions", types.FunctionDeployment{Service: strings.Repeat("a", 41), Image: ref}},
			{400, "has not been built", "POST", "/system/functions", types.FunctionDeployment{Service: "nobuild", Image: "ads/never:1"}},
			{400, "do not exist", "POST", "/system/functions", types.FunctionDeployment{Service: "nosecret", Image: ref, Secrets: []string{"ghost"}}},
			{400, "not supported", "POST", "/system/functions", types.FunctionDeployment{Service: "ns", Image: ref, Namespace: "default"}},
			{400, "com.openfaas.scale.min", "POST", "/system/functions", types.FunctionDeployment{Service: "big", Image: ref, Labels: &map[string]string{"com.openfaas.scale.min": "9"}}},
			{404, "not found", "PUT", "/system/functions", types.FunctionDeployment{Service: "ghost", Image: ref}},
			{400, "has not been built", "PUT", "/system/functions", types.FunctionDeployment{Service: fn, Image: "ads/never:1"}},
			{404, "not found", "DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: "ghost"}},
			{400, "invalid function name", "DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: "../x"}},
			{404, "not found", "GET", "/system/function/ghost", nil},
			{400, "invalid function name", "GET", "/system/function/BAD", nil},
			{400, "between 0 and 5", "POST", "/system/scale-function/" + fn, `{"serviceName":"echo","replicas":-1}`},
			{400, "between 0 and 5", "POST", "/system/scale-function/" + fn, `{"serviceName":"echo","replicas":6}`},
			{400, "replicas is required", "POST", "/system/scale-function/" + fn, `{"serviceName":"echo"}`},
			{400, "malformed JSON", "POST", "/system/scale-function/" + fn, `{"replicas":"three"}`},
			{404, "not found", "POST", "/system/scale-function/ghost", `{"serviceName":"ghost","replicas":1}`},
			{404, "not found", "GET", "/function/ghost", nil},
			{404, "not found", "GET", "/function/" + fn + ".other-ns", nil},
			{400, "malformed JSON", "POST", "/system/secrets", `nope`},
		}
		for _, c := range cases {
			cl := api
			if strings.HasPrefix(c.path, "/function/") {
				cl = anon
			}
			cl.expect(c.code, c.want, c.method, c.path, c.body)
		}
		// Nothing above changed the running function.
		waitAvailable(t, api, fn, 3, 5*time.Second)
	})

	t.Run("rolling update replaces every replica", func(t *testing.T) {
		old := map[string]bool{}
		for _, r := range replicasOf(in.P, fn) {
			old[r.Replica] = true
		}
		api.expect(http.StatusAccepted, "", "PUT", "/system/functions", types.FunctionDeployment{
			Service: fn, Image: ref, EnvVars: map[string]string{"FOO": "baz"}, Secrets: []string{"api-key"},
		})
		eventually(t, 20*time.Second, "all replicas replaced", func() (bool, string) {
			rs := replicasOf(in.P, fn)
			ready := 0
			for _, r := range rs {
				if old[r.Replica] {
					return false, fmt.Sprintf("old replica %s still there", r.Replica)
				}
				if r.Ready {
					ready++
				}
			}
			return len(rs) == 3 && ready == 3, fmt.Sprintf("%d replicas, %d ready", len(rs), ready)
		})
		if st := status(t, api, fn); st.EnvVars["FOO"] != "baz" || st.Replicas != 3 {
			t.Errorf("after update: %+v", st)
		}
		anon.expect(http.StatusOK, `"FOO": "baz"`, "GET", "/function/"+fn+"/env", nil)
	})

	t.Run("deployments persist", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(stateDir, "deployments.json"))
		if err != nil || !strings.Contains(string(data), `"service": "echo"`) || !strings.Contains(string(data), `"replicas": 3`) {
			t.Errorf("deployments.json: %v %s", err, data)
		}
	})

	t.Run("scale down then delete", func(t *testing.T) {
		api.expect(http.StatusAccepted, "", "POST", "/system/scale-function/"+fn, map[string]any{"serviceName": fn, "replicas": 1})
		waitAvailable(t, api, fn, 1, 15*time.Second)
		if got, want := tn.mac(t), netns.BridgeMAC(tn.Bridge); got != want {
			t.Errorf("bridge address after replicas came and went: %s, want the pinned %s", got, want)
		}
		api.expect(http.StatusAccepted, "", "DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: fn})
		api.expect(http.StatusNotFound, "", "GET", "/system/function/"+fn, nil)
		anon.expect(http.StatusNotFound, "", "GET", "/function/"+fn, nil)
		if left := tn.leftovers(t); len(left) != 0 {
			t.Errorf("after delete, left behind: %v", left)
		}
		if entries, _ := os.ReadDir(filepath.Join(stateDir, "replicas")); len(entries) != 0 {
			t.Errorf("replica directories left: %d", len(entries))
		}
		// The same name can be deployed again at once.
		api.expect(http.StatusAccepted, "", "POST", "/system/functions", types.FunctionDeployment{Service: fn, Image: ref, Secrets: []string{"api-key"}})
		waitAvailable(t, api, fn, 1, 15*time.Second)
	})

	t.Run("shutdown leaves no namespace or veth", func(t *testing.T) {
		in.Stop(t)
		if left := tn.leftovers(t); len(left) != 0 {
			t.Errorf("after shutdown, left behind: %v", left)
		}
	})

	t.Run("restart restores deployments and sweeps crash leftovers", func(t *testing.T) {
		// Fake a crashed run's leftovers: a namespace and a veth with our prefix.
		run(t, "ip", "netns", "add", tn.Prefix+"deadbeef")
		run(t, "ip", "link", "add", tn.Prefix+"deadbeefh", "type", "veth", "peer", "name", tn.Prefix+"deadbeefc")
		in2 := startProvider(t, server.Config{
			StateDir: stateDir, ImagesDir: images, AuthDir: writeAuth(t, user, pass),
			Bridge: tn.Bridge, BridgeCIDR: tn.CIDR, NetnsPrefix: tn.Prefix,
			MaxReplicas: 5, ReadyTimeout: 20 * time.Second,
		})
		api2 := client{t: t, base: in2.API.URL, user: user, pass: pass}
		waitAvailable(t, api2, fn, 1, 15*time.Second)
		for _, l := range tn.leftovers(t) {
			if strings.Contains(l, "deadbeef") {
				t.Errorf("crash leftover not swept: %s", l)
			}
		}
		client{t: t, base: in2.API.URL}.expect(http.StatusOK, "hello from", "GET", "/function/"+fn, nil)
		in2.Stop(t)
		if left := tn.leftovers(t); len(left) != 0 {
			t.Errorf("after second shutdown, left behind: %v", left)
		}
	})

	t.Logf("end-to-end test took %s", time.Since(start).Round(time.Millisecond))
}
