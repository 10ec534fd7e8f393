package functions

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
)

// replicas resolves to the given hosts in turn; none at all is "no ready replica".
type replicas struct {
	hosts []string
	n     int
}

func (r *replicas) Resolve(string) (url.URL, error) {
	if len(r.hosts) == 0 {
		return url.URL{}, errors.New("no ready replica")
	}
	h := r.hosts[r.n%len(r.hosts)]
	r.n++
	return url.URL{Scheme: "http", Host: h}, nil
}

// deadAddress is a port nothing listens on: connecting is refused.
func deadAddress(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func invoke(p *Proxy, method, target, body string) *httptest.ResponseRecorder {
	router := mux.NewRouter()
	router.Handle("/function/{name}", p)
	router.Handle("/function/{name}/{params:.*}", p)
	rec := httptest.NewRecorder()
	router.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	return rec
}

func TestProxyForwardsPathQueryAndBodyAndSkipsAnUnreachableReplica(t *testing.T) {
	replica := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.URL.Path+"?"+r.URL.RawQuery+" "+string(body)+" "+r.Header.Get("X-Forwarded-Host"))
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "done")
	}))
	defer replica.Close()
	live := strings.TrimPrefix(replica.URL, "http://")
	p := &Proxy{Resolver: &replicas{hosts: []string{deadAddress(t), live}}, Client: NewProxyClient(time.Second, 10*time.Second), Attempts: 3}

	rec := invoke(p, http.MethodPost, "http://gw/function/campaigns/abc/pause?x=1", `{"a":1}`)
	if rec.Code != http.StatusCreated || rec.Body.String() != "done" {
		t.Fatalf("%d %q", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("X-Seen"); got != `/abc/pause?x=1 {"a":1} gw` {
		t.Errorf("the replica saw %q", got)
	}
}

func TestProxyAnswers503WithoutReplicasAnd502WhenNoneConnects(t *testing.T) {
	p := &Proxy{Resolver: &replicas{}, Client: NewProxyClient(time.Second, 10*time.Second), Attempts: 3}
	if rec := invoke(p, http.MethodGet, "/function/bid", ""); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("X-OpenFaaS-Internal") != "proxy" {
		t.Errorf("no replica: %d %v", rec.Code, rec.Header())
	}
	p.Resolver = &replicas{hosts: []string{deadAddress(t), deadAddress(t)}}
	if rec := invoke(p, http.MethodGet, "/function/bid", ""); rec.Code != http.StatusBadGateway {
		t.Errorf("every replica unreachable: %d", rec.Code)
	}
}
