package watchdog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"time"
)

// Error codes of the {"error", "message", "requestId"} bodies the proxy writes.
const (
	CodeTooManyRequests = "TOO_MANY_REQUESTS"
	CodeExecTimeout     = "EXEC_TIMEOUT"
	CodeUpstreamError   = "UPSTREAM_ERROR"
	CodeUnavailable     = "UPSTREAM_UNAVAILABLE"
	CodeNotFound        = "NOT_FOUND"
)

// Target is the replica one invocation goes to.
type Target struct {
	Function string
	Replica  string
	HostPort string // ip:8080
	State    *Replica
	// Acquired is false when every ready replica was at max_inflight: the
	// request is refused with 429 and counted on this replica.
	Acquired bool
}

// Proxy forwards invocations to replicas with of-watchdog's guarantees.
type Proxy struct {
	rp *httputil.ReverseProxy
	// MaxTimeout bounds every invocation, whatever exec_timeout says (the
	// provider's --upstream-timeout).
	MaxTimeout time.Duration
}

type ctxKey struct{}

// routeInfo travels with the request from ServeHTTP to the reverse proxy.
type routeInfo struct {
	target  Target
	path    string
	timeout time.Duration
	started time.Time
}

// NewProxy creates the invocation proxy; one is shared by all functions.
func NewProxy(maxTimeout time.Duration) *Proxy {
	transport := &http.Transport{
		Proxy:                 nil, // replicas are on the bridge: never through an HTTP proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       5 * time.Second,
		ExpectContinueTimeout: 1500 * time.Millisecond,
	}
	p := &Proxy{MaxTimeout: maxTimeout}
	p.rp = &httputil.ReverseProxy{
		Director: func(r *http.Request) {
			info := r.Context().Value(ctxKey{}).(*routeInfo)
			r.URL.Scheme = "http"
			r.URL.Host = info.target.HostPort
			r.URL.Path = "/" + strings.TrimPrefix(info.path, "/")
			r.URL.RawPath = ""
			if r.Header.Get("X-Forwarded-Host") == "" && r.Host != "" {
				r.Header.Set("X-Forwarded-Host", r.Host)
			}
			r.Host = info.target.HostPort
		},
		Transport:     transport,
		FlushInterval: -1, // stream as the function writes (event streams, NDJSON)
		ErrorHandler:  p.upstreamFailed,
		ModifyResponse: func(resp *http.Response) error {
			info := resp.Request.Context().Value(ctxKey{}).(*routeInfo)
			resp.Header.Set("X-Duration-Seconds", seconds(info.started))
			return nil
		},
		ErrorLog: log.New(log.Writer(), log.Prefix(), log.Flags()),
	}
	return p
}

// Serve forwards r (whose path after /function/<name> is path) to t.
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, t Target, path string) {
	started := time.Now()
	rec := &recorder{ResponseWriter: w}
	defer func() { t.State.Observe(rec.status(), r.Method, time.Since(started)) }()
	if !t.Acquired {
		WriteError(rec, r, http.StatusTooManyRequests, CodeTooManyRequests,
			fmt.Sprintf("function %s: replica %s is at its limit of %d concurrent requests (max_inflight); retry shortly",
				t.Function, t.Replica, t.State.cfg.MaxInflight))
		return
	}
	defer t.State.Release()

	timeout := p.timeout(t.State.cfg.ExecTimeout, r.Header.Get("X-Timeout"))
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	info := &routeInfo{target: t, path: path, timeout: timeout, started: started}
	ctx = context.WithValue(ctx, ctxKey{}, info)
	p.rp.ServeHTTP(rec, r.WithContext(ctx))
}

func seconds(since time.Time) string {
	return strconv.FormatFloat(time.Since(since).Seconds(), 'f', 6, 64)
}

// timeout is exec_timeout, shortened (never lengthened) by X-Timeout, and
// never longer than the provider's own upper bound.
func (p *Proxy) timeout(exec time.Duration, header string) time.Duration {
	t := exec
	if t <= 0 || (p.MaxTimeout > 0 && t > p.MaxTimeout) {
		t = p.MaxTimeout
	}
	if header != "" {
		if d, err := parseDuration(header); err == nil && d > 0 && d < t {
			t = d
		}
	}
	return t
}

// upstreamFailed answers when the replica could not be reached or did not
// answer in time: 504 after exec_timeout, 502 otherwise, naming the function.
func (p *Proxy) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	info := r.Context().Value(ctxKey{}).(*routeInfo)
	t := info.target
	w.Header().Set("X-OpenFaaS-Internal", "proxy")
	w.Header().Set("X-Duration-Seconds", seconds(info.started))
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(r.Context().Err(), context.DeadlineExceeded) {
		WriteError(w, r, http.StatusGatewayTimeout, CodeExecTimeout,
			fmt.Sprintf("function %s did not answer within %s (exec_timeout) on replica %s", t.Function, info.timeout, t.Replica))
		return
	}
	if errors.Is(err, context.Canceled) {
		// The caller went away; nobody reads this answer, but it is counted.
		w.WriteHeader(499)
		return
	}
	log.Printf("function %s: replica %s: %v", t.Function, t.Replica, err)
	WriteError(w, r, http.StatusBadGateway, CodeUpstreamError,
		fmt.Sprintf("function %s: replica %s could not be reached or broke off its answer: %v", t.Function, t.Replica, err))
}

// RequestID is the caller's correlation id: X-Call-Id (set by the gateway)
// or X-Request-Id; empty when neither is present.
func RequestID(r *http.Request) string {
	if id := r.Header.Get("X-Call-Id"); id != "" {
		return id
	}
	return r.Header.Get("X-Request-Id")
}

// WriteError writes the product's error body {"error", "message", "requestId"}.
func WriteError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	body, _ := json.Marshal(map[string]string{"error": code, "message": message, "requestId": RequestID(r)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// recorder remembers the status code for the metrics.
type recorder struct {
	http.ResponseWriter
	code int
}

func (w *recorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and friends.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *recorder) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
