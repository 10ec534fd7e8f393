package integration

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/server"
)

// result of one invocation made off the test goroutine.
type result struct {
	code int
	body string
	err  error
}

func invokeAsync(url string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		ch <- result{code: resp.StatusCode, body: string(b)}
	}()
	return ch
}

// waitInflight waits until the function's replicas serve n requests in total.
func waitInflight(t *testing.T, p *server.Provider, n int) {
	t.Helper()
	eventually(t, 5*time.Second, "requests in flight", func() (bool, string) {
		total := 0
		for _, r := range replicasOf(p, fn) {
			total += r.Inflight
		}
		return total == n, strings.Repeat("|", total)
	})
}

// TestReplicaRuntime: real replicas, each behind the real of-watchdog in
// its namespace: max_inflight (429 from the watchdog), exec_timeout (504
// from the watchdog, the replica stays), and a drain on scale-in and on
// shutdown (SIGTERM to the watchdog) that lets accepted requests finish,
// even when they outlast healthcheck_interval.
func TestReplicaRuntime(t *testing.T) {
	requireRoot(t)
	tn := setupNetwork(t)
	images := t.TempDir()
	writeImage(t, images, ref, functionScript, nil)
	in := startProvider(t, server.Config{
		StateDir: t.TempDir(), ImagesDir: images,
		Bridge: tn.Bridge, BridgeCIDR: tn.CIDR, NetnsPrefix: tn.Prefix,
		MaxReplicas: 5, ReadyTimeout: 20 * time.Second, UpstreamTimeout: time.Minute,
	})
	api := client{t: t, base: in.API.URL}
	api.expect(http.StatusAccepted, "", "POST", "/system/functions", types.FunctionDeployment{
		Service: fn, Image: ref,
		EnvVars: map[string]string{"max_inflight": "1", "exec_timeout": "4s", "write_timeout": "8s", "healthcheck_interval": "1s"},
	})
	waitAvailable(t, api, fn, 1, 15*time.Second)
	replica := replicasOf(in.P, fn)[0]
	if replica.MaxInflight != 1 {
		t.Fatalf("max_inflight not read from the environment: %+v", replica)
	}

	t.Run("a replica at max_inflight answers 429", func(t *testing.T) {
		slow := invokeAsync(in.API.URL + "/function/" + fn + "/sleep/1500")
		waitInflight(t, in.P, 1)
		req, _ := http.NewRequest("GET", in.API.URL+"/function/"+fn, nil)
		req.Header.Set("X-Call-Id", "call-429")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "Concurrent request limit exceeded") {
			t.Errorf("at the cap: %d %q, want of-watchdog's 429", resp.StatusCode, body)
		}
		if r := <-slow; r.err != nil || r.code != 200 {
			t.Errorf("the accepted request: %+v", r)
		}
	})

	t.Run("exec_timeout gives 504 and the replica stays up", func(t *testing.T) {
		started := time.Now()
		code, body := api.do("GET", "/function/"+fn+"/sleep/10000", nil)
		if code != http.StatusGatewayTimeout {
			t.Errorf("past exec_timeout: %d %q, want of-watchdog's 504", code, body)
		}
		if took := time.Since(started); took > 9*time.Second {
			t.Errorf("504 came after %s: the handler's sleep ended it, not exec_timeout (4s)", took)
		}
		// While it held its one slot, of-watchdog's /_/ready answered 429 and
		// the replica may have left rotation (as a pod leaves its endpoints);
		// it comes back as the same process.
		waitAvailable(t, api, fn, 1, 5*time.Second)
		api.expect(http.StatusOK, "hello from "+replica.Replica, "GET", "/function/"+fn, nil)
		now := replicasOf(in.P, fn)
		if len(now) != 1 || now[0].Replica != replica.Replica || now[0].Restarts != 0 || now[0].PID != replica.PID {
			t.Errorf("the replica changed after a timeout: was %+v, now %+v", replica, now)
		}
	})

	t.Run("scale-in drains accepted requests", func(t *testing.T) {
		api.expect(http.StatusAccepted, "", "POST", "/system/scale-function/"+fn, map[string]any{"serviceName": fn, "replicas": 2})
		waitAvailable(t, api, fn, 2, 15*time.Second)
		// One long request on each replica (max_inflight 1 spreads them).
		// Each outlasts healthcheck_interval (1s): the watchdog's drain must finish it.
		first, second := invokeAsync(in.API.URL+"/function/"+fn+"/sleep/2500"), invokeAsync(in.API.URL+"/function/"+fn+"/sleep/2500")
		waitInflight(t, in.P, 2)
		api.expect(http.StatusAccepted, "", "POST", "/system/scale-function/"+fn, map[string]any{"serviceName": fn, "replicas": 1})
		for _, ch := range []<-chan result{first, second} {
			if r := <-ch; r.err != nil || r.code != 200 {
				t.Errorf("a request accepted before the scale-in: %+v", r)
			}
		}
		waitAvailable(t, api, fn, 1, 10*time.Second)
	})

	t.Run("shutdown drains accepted requests", func(t *testing.T) {
		slow := invokeAsync(in.API.URL + "/function/" + fn + "/sleep/2500")
		waitInflight(t, in.P, 1)
		// What SIGTERM does in main.go, with the API listener still open
		// (so only the replica's own drain can keep the request alive).
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done <- in.P.Shutdown(ctx)
		}()
		if r := <-slow; r.err != nil || r.code != 200 {
			t.Errorf("a request accepted before shutdown: %+v", r)
		}
		if err := <-done; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		in.stopped.Do(func() {
			in.API.Close()
			in.Ops.Close()
		})
		if left := tn.leftovers(t); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}
