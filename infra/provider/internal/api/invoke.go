package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"adserver/provider/internal/naming"
	"adserver/provider/internal/replicas"
)

// Error codes of the {"error", "message", "requestId"} bodies the provider
// writes for invocations it cannot hand to a replica.
const (
	codeNotFound      = "NOT_FOUND"
	codeUnavailable   = "UPSTREAM_UNAVAILABLE"
	codeUpstreamError = "UPSTREAM_ERROR"
	codeTimeout       = "UPSTREAM_TIMEOUT"
)

type targetKey struct{}

// newInvokeProxy forwards an invocation to the replica's of-watchdog, which
// does the rest (max_inflight 429, exec_timeout 504, its metrics), as
// faas-netes hands it to a pod. timeout is the provider's own upper bound
// (--upstream-timeout), far above any exec_timeout.
func newInvokeProxy(timeout time.Duration) *httputil.ReverseProxy {
	transport := &http.Transport{
		Proxy:                 nil, // replicas are on the bridge: never through an HTTP proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       5 * time.Second,
		ExpectContinueTimeout: 1500 * time.Millisecond,
		ResponseHeaderTimeout: timeout,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(targetKey{}).(replicas.Target)
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = t.HostPort
			// The path goes on as it came, still encoded: a container gets
			// the bytes the caller sent, so a function routes on the raw
			// path and an encoded "/" or "#" in an id stays inside the id.
			pr.Out.URL.Path, pr.Out.URL.RawPath = functionPath(pr.In)
			pr.Out.Host = t.HostPort
			pr.SetXForwarded()
			if host := pr.In.Header.Get("X-Forwarded-Host"); host != "" {
				pr.Out.Header.Set("X-Forwarded-Host", host) // the gateway's original host
			}
		},
		Transport:     transport,
		FlushInterval: -1, // stream as the function writes (event streams, NDJSON)
		ErrorHandler:  upstreamFailed,
		ErrorLog:      log.New(log.Writer(), log.Prefix(), log.Flags()),
	}
}

// functionPath is the part of the request's path after /function/{name}:
// decoded and, unchanged, as the caller encoded it ("/" when empty).
func functionPath(r *http.Request) (decoded, raw string) {
	raw = "/"
	if parts := strings.SplitN(r.URL.EscapedPath(), "/", 4); len(parts) == 4 {
		raw += parts[3] // "", "function", the name, then the rest
	}
	decoded, err := url.PathUnescape(raw)
	if err != nil { // EscapedPath is always valid; keep the decoded form then
		return "/" + strings.TrimPrefix(mux.Vars(r)["params"], "/"), ""
	}
	return decoded, raw
}

// invoke serves /function/{name}[/path]: it picks a ready replica
// (round-robin) and forwards to its of-watchdog. Failures before a replica
// answers get clear answers in the product's error body: an unknown
// function (404), no ready replica yet (503), a replica that cannot be
// reached or breaks off (502).
func (h *handlers) invoke(p *httputil.ReverseProxy) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := mux.Vars(r)["name"]
		name, err := naming.SplitQualified(raw)
		if err != nil {
			w.Header().Set("X-OpenFaaS-Internal", "proxy")
			writeError(w, r, http.StatusNotFound, codeNotFound, fmt.Sprintf("function %s not found: %v", raw, err))
			return
		}
		target, ok := h.cfg.Supervisor.Pick(name)
		if !ok {
			exists, ready, total := h.cfg.Supervisor.Availability(name)
			w.Header().Set("X-OpenFaaS-Internal", "proxy")
			if !exists {
				writeError(w, r, http.StatusNotFound, codeNotFound, fmt.Sprintf("function %s not found", name))
				return
			}
			w.Header().Set("Retry-After", "1")
			writeError(w, r, http.StatusServiceUnavailable, codeUnavailable,
				fmt.Sprintf("function %s has no ready replica (%d of %d ready); retry shortly", name, ready, total))
			return
		}
		defer target.Done()
		p.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, target)))
	}
}

// upstreamFailed answers when the replica's of-watchdog could not be
// reached, broke off, or exceeded the provider's own bound.
func upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	t := r.Context().Value(targetKey{}).(replicas.Target)
	w.Header().Set("X-OpenFaaS-Internal", "proxy")
	if errors.Is(err, context.Canceled) {
		w.WriteHeader(499) // the caller went away; nobody reads this
		return
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		writeError(w, r, http.StatusGatewayTimeout, codeTimeout,
			fmt.Sprintf("function %s: replica %s gave no answer within the provider's upstream timeout", t.Function, t.Replica))
		return
	}
	log.Printf("function %s: replica %s: %v", t.Function, t.Replica, err)
	writeError(w, r, http.StatusBadGateway, codeUpstreamError,
		fmt.Sprintf("function %s: replica %s could not be reached or broke off its answer: %v", t.Function, t.Replica, err))
}

// requestID is the caller's correlation id: X-Call-Id (set by the gateway)
// or X-Request-Id; empty when neither is present.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Call-Id"); id != "" {
		return id
	}
	return r.Header.Get("X-Request-Id")
}

// writeError writes the product's error body {"error", "message", "requestId"}.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	body, _ := json.Marshal(map[string]string{"error": code, "message": message, "requestId": requestID(r)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
