package functions

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"
)

// Proxy forwards /function/{name}[/params] to one ready replica, as faas-provider's reference
// proxy does (path and query kept, X-Forwarded-Host and -For set, 503 when no replica is
// ready), with one difference that matters when a node is lost: a replica that cannot be
// connected to within DialTimeout is skipped for the next one, up to Attempts replicas.
// Until Kubernetes marks a lost node's pods unready (about 40 s), the Endpoints still list
// them, and the SDK's proxy would wait its whole read timeout on each. A connect that failed
// sent nothing, so trying another replica never runs a request twice.
type Proxy struct {
	Resolver interface {
		Resolve(name string) (url.URL, error)
	}
	Client   *http.Client
	Attempts int
}

// maxProxiedBody is the largest body kept in memory to be replayed on another replica.
const maxProxiedBody = 8 << 20

// NewProxyClient has a short connect timeout and the whole request bounded by timeout.
func NewProxyClient(dialTimeout, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // replicas are always reached directly
			DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   1024,
			IdleConnTimeout:       5 * time.Second,
			ExpectContinueTimeout: 1500 * time.Millisecond,
		},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	name := vars["name"]
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, maxProxiedBody+1))
		if err != nil {
			internalError(w, http.StatusBadRequest, "reading the request body: %v", err)
			return
		}
		if len(body) > maxProxiedBody {
			internalError(w, http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes", maxProxiedBody)
			return
		}
	}
	attempts := max(p.Attempts, 1)
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		base, err := p.Resolver.Resolve(name)
		if err != nil {
			log.Printf("no replica of %s: %v", name, err)
			internalError(w, http.StatusServiceUnavailable, "No endpoints available for: %s.", name)
			return
		}
		res, err := p.Client.Do(upstreamRequest(r, base, vars["params"], body))
		if err != nil {
			lastErr = err
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" && r.Context().Err() == nil {
				log.Printf("%s: replica %s unreachable, trying another: %v", name, base.Host, err)
				continue
			}
			break
		}
		defer res.Body.Close()
		for k, v := range res.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(res.StatusCode)
		_, _ = io.Copy(flushWriter{w}, res.Body)
		return
	}
	log.Printf("%s: %v", name, lastErr)
	internalError(w, http.StatusBadGateway, "Can't reach service for: %s.", name)
}

func upstreamRequest(r *http.Request, base url.URL, path string, body []byte) *http.Request {
	target := url.URL{Scheme: "http", Host: base.Host, Path: "/" + path, RawQuery: r.URL.RawQuery}
	out, _ := http.NewRequestWithContext(r.Context(), r.Method, target.String(), bytes.NewReader(body))
	for k, v := range r.Header {
		out.Header[k] = append([]string(nil), v...)
	}
	if r.Host != "" && out.Header.Get("X-Forwarded-Host") == "" {
		out.Header.Set("X-Forwarded-Host", r.Host)
	}
	if out.Header.Get("X-Forwarded-For") == "" {
		out.Header.Set("X-Forwarded-For", r.RemoteAddr)
	}
	return out
}

// internalError answers an error of the proxy itself, marked as faas-provider marks it.
func internalError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("X-OpenFaaS-Internal", "proxy")
	http.Error(w, fmt.Sprintf(format, args...), status)
}

// flushWriter passes a streamed response (logs, server-sent events) on as it comes.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}
