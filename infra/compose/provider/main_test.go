package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/types"
)

// A provider whose functions answer on a local test server: "up" is reached at 127.0.0.1.
func testProvider(t *testing.T, ready int) *provider {
	t.Helper()
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_/ready" {
			w.WriteHeader(ready)
			return
		}
		_, _ = w.Write([]byte("hello from " + r.URL.Path))
	}))
	t.Cleanup(fn.Close)
	_, port, _ := net.SplitHostPort(fn.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	topic := map[string]string{"topic": "impressions,clicks"}
	return &provider{
		functions: map[string]stackFunction{
			"127.0.0.1":       {Image: "ads/up:0.1.0", Annotations: topic},
			"nowhere.invalid": {Image: "ads/down:0.1.0"},
		},
		namespace: "openfaas-fn",
		port:      p,
		started:   time.Now(),
		probe:     &http.Client{Timeout: time.Second},
	}
}

func TestListSaysWhichFunctionsAreReadyAndKeepsAnnotations(t *testing.T) {
	p := testProvider(t, http.StatusOK)
	rec := httptest.NewRecorder()
	p.list(rec, httptest.NewRequest(http.MethodGet, "/system/functions", nil))
	var got []types.FunctionStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "127.0.0.1" || got[1].Name != "nowhere.invalid" {
		t.Fatalf("list = %+v", got)
	}
	if got[0].AvailableReplicas != 1 || got[1].AvailableReplicas != 0 {
		t.Fatalf("available = %d, %d", got[0].AvailableReplicas, got[1].AvailableReplicas)
	}
	if got[0].Namespace != "openfaas-fn" {
		t.Fatalf("namespace = %q: the gateway looks up counts under name.namespace", got[0].Namespace)
	}
	if (*got[0].Annotations)["topic"] != "impressions,clicks" {
		t.Fatalf("annotations = %v", *got[0].Annotations)
	}
}

func TestAFunctionNotReadyYetIsNotAvailable(t *testing.T) {
	p := testProvider(t, http.StatusServiceUnavailable)
	if s := p.status("127.0.0.1"); s.AvailableReplicas != 0 {
		t.Fatalf("available = %d while /_/ready answers 503", s.AvailableReplicas)
	}
}

func TestDescribeAnUnknownFunctionIs404(t *testing.T) {
	p := testProvider(t, http.StatusOK)
	rec := httptest.NewRecorder()
	req := mux.SetURLVars(httptest.NewRequest(http.MethodGet, "/system/function/x", nil),
		map[string]string{"name": "x"})
	p.describe(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status = %d", rec.Code)
	}
}

func TestResolveNamesTheComposeServiceOnlyForStackFunctions(t *testing.T) {
	p := testProvider(t, http.StatusOK)
	u, err := p.Resolve("127.0.0.1")
	if err != nil || u.Host != "127.0.0.1:"+strconv.Itoa(p.port) {
		t.Fatalf("Resolve = %v, %v", u, err)
	}
	if u, err := p.Resolve("127.0.0.1.openfaas-fn"); err != nil || u.Host != "127.0.0.1:"+strconv.Itoa(p.port) {
		t.Fatalf("Resolve(name.namespace) = %v, %v", u, err)
	}
	if _, err := p.Resolve("other"); err == nil {
		t.Fatal("a function outside the stack file resolved")
	}
}
