package watchdog

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// upstream is a stand-in replica: /sleep?ms=N sleeps, anything else echoes the path.
func upstream(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sleep" {
			d, _ := time.ParseDuration(r.URL.Query().Get("d"))
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		_, _ = io.WriteString(w, "path="+r.URL.Path+" host="+r.Header.Get("X-Forwarded-Host"))
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func invoke(p *Proxy, tg Target, method, path, query string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://gw/function/fn/"+path+query, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	p.Serve(w, req, tg, path)
	return w
}

func errorBody(t *testing.T, w *httptest.ResponseRecorder) map[string]string {
	t.Helper()
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body is not JSON: %q", w.Body.String())
	}
	return body
}

func TestProxyAnswers(t *testing.T) {
	host := upstream(t)
	closed := func() string { // an address where nothing listens
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	p := NewProxy(time.Minute)
	rep := NewReplica(Config{MaxInflight: 1, ExecTimeout: 200 * time.Millisecond, WriteTimeout: time.Second})
	target := func(hostPort string) Target {
		if !rep.TryAcquire() {
			t.Fatal("slot expected")
		}
		return Target{Function: "fn", Replica: "fn-1", HostPort: hostPort, State: rep, Acquired: true}
	}

	if w := invoke(p, target(host), "GET", "a/b", "?x=1", nil); w.Code != 200 || w.Body.String() != "path=/a/b host=gw" {
		t.Errorf("forward: %d %q", w.Code, w.Body.String())
	}
	if w := invoke(p, target(host), "POST", "", "", nil); w.Code != 200 || !strings.HasPrefix(w.Body.String(), "path=/ ") ||
		w.Header().Get("X-Duration-Seconds") == "" {
		t.Errorf("root path: %d %q %v", w.Code, w.Body.String(), w.Header())
	}

	started := time.Now()
	w := invoke(p, target(host), "GET", "sleep", "?d=5s", http.Header{"X-Call-Id": {"call-1"}})
	if took := time.Since(started); w.Code != http.StatusGatewayTimeout || took > 2*time.Second {
		t.Errorf("exec timeout: %d after %s", w.Code, took)
	}
	if b := errorBody(t, w); b["error"] != CodeExecTimeout || b["requestId"] != "call-1" || !strings.Contains(b["message"], "function fn") {
		t.Errorf("504 body: %v", b)
	}

	w = invoke(p, target(host), "GET", "sleep", "?d=2s", http.Header{"X-Timeout": {"50ms"}})
	if w.Code != http.StatusGatewayTimeout || !strings.Contains(errorBody(t, w)["message"], "50ms") {
		t.Errorf("X-Timeout must shorten exec_timeout: %d %q", w.Code, w.Body.String())
	}
	w = invoke(p, target(host), "GET", "sleep", "?d=100ms", http.Header{"X-Timeout": {"10s"}})
	if w.Code != 200 {
		t.Errorf("X-Timeout longer than exec_timeout is ignored, 100ms fits: %d", w.Code)
	}

	w = invoke(p, target(closed), "GET", "", "", http.Header{"X-Request-Id": {"req-9"}})
	if b := errorBody(t, w); w.Code != http.StatusBadGateway || b["error"] != CodeUpstreamError || b["requestId"] != "req-9" ||
		!strings.Contains(b["message"], "function fn") {
		t.Errorf("unreachable: %d %v", w.Code, b)
	}

	// At the cap: refused at once with 429 and counted.
	if !rep.TryAcquire() {
		t.Fatal("slot expected")
	}
	w = invoke(p, Target{Function: "fn", Replica: "fn-1", HostPort: host, State: rep, Acquired: rep.TryAcquire()}, "GET", "", "", nil)
	if b := errorBody(t, w); w.Code != http.StatusTooManyRequests || b["error"] != CodeTooManyRequests || !strings.Contains(b["message"], "max_inflight") {
		t.Errorf("at the cap: %d %v", w.Code, b)
	}
	rep.Release()
	if rep.Inflight() != 0 {
		t.Errorf("in flight after all requests: %d", rep.Inflight())
	}

	page := httptest.NewRecorder()
	rep.MetricsHandler().ServeHTTP(page, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`http_requests_total{code="200",method="get"} 2`,
		`http_requests_total{code="200",method="post"} 1`,
		`http_requests_total{code="504",method="get"} 2`,
		`http_requests_total{code="502",method="get"} 1`,
		`http_requests_total{code="429",method="get"} 1`,
		`http_request_duration_seconds_count{code="504",method="get"} 2`,
		"http_requests_in_flight 0",
	} {
		if !strings.Contains(page.Body.String(), want) {
			t.Errorf("metrics page lacks %q:\n%s", want, page.Body.String())
		}
	}
}
