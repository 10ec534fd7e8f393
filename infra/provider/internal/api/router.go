// Package api serves the faas-provider HTTP API that the OpenFaaS gateway
// calls: the same routes as the SDK's bootstrap.Serve, with our handlers.
//
// We build the router ourselves instead of calling bootstrap.Serve because
// Serve listens on ":<port>" (every interface, not --listen's address), keeps
// its routes in a package-global router (one provider per process, which
// rules out in-process tests) and exits the process on listen errors. The
// SDK's pieces are still used where they fit: types, the auth middleware,
// and the logs handler. Invocations go through our own proxy (invoke.go),
// which picks a ready replica and hands the request to its of-watchdog.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/auth"
	"github.com/openfaas/faas-provider/logs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"adserver/provider/internal/images"
	"adserver/provider/internal/logstore"
	"adserver/provider/internal/replicas"
	"adserver/provider/internal/secrets"
)

// nameExpression matches the SDK's route expression for function names;
// stricter checks happen in the handlers, with clear messages.
const nameExpression = "-a-zA-Z_0-9."

// maxBody bounds request bodies (a deployment, a secret of up to 1 MiB).
const maxBody = 2 << 20

// Config wires the handlers to the rest of the provider.
type Config struct {
	Supervisor  *replicas.Supervisor
	Secrets     *secrets.Store
	Logs        *logstore.Store
	Credentials *auth.BasicAuthCredentials // nil disables basic auth
	// UpstreamTimeout bounds one invocation.
	UpstreamTimeout time.Duration
	// LogsTimeout bounds one logs request, a followed stream included.
	LogsTimeout time.Duration
	Gatherer    prometheus.Gatherer
	Version     string
	SHA         string
}

type handlers struct {
	cfg Config
}

// NewRouter returns the provider API (port 8090 by default).
func NewRouter(cfg Config) http.Handler {
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 5 * time.Minute
	}
	if cfg.LogsTimeout <= 0 {
		cfg.LogsTimeout = 30 * time.Second
	}
	h := &handlers{cfg: cfg}
	r := mux.NewRouter()

	sys := func(f http.HandlerFunc) http.HandlerFunc {
		if cfg.Credentials == nil {
			return f
		}
		return auth.DecorateWithBasicAuth(f, cfg.Credentials)
	}

	r.HandleFunc("/system/functions", sys(h.listFunctions)).Methods(http.MethodGet)
	r.HandleFunc("/system/functions", sys(h.deployFunction)).Methods(http.MethodPost)
	r.HandleFunc("/system/functions", sys(h.updateFunction)).Methods(http.MethodPut)
	r.HandleFunc("/system/functions", sys(h.deleteFunction)).Methods(http.MethodDelete)
	r.HandleFunc("/system/function/{name:["+nameExpression+"]+}", sys(h.functionStatus)).Methods(http.MethodGet)
	r.HandleFunc("/system/scale-function/{name:["+nameExpression+"]+}", sys(h.scaleFunction)).Methods(http.MethodPost)
	r.HandleFunc("/system/secrets", sys(h.secrets)).Methods(http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete)
	r.HandleFunc("/system/logs", sys(h.logs(logs.NewLogHandlerFunc(cfg.Logs, cfg.LogsTimeout)))).Methods(http.MethodGet)
	r.HandleFunc("/system/info", sys(h.info)).Methods(http.MethodGet)
	r.HandleFunc("/system/namespaces", sys(h.namespaces)).Methods(http.MethodGet)
	r.HandleFunc("/system/namespace/{name:["+nameExpression+"]*}", sys(notImplemented))

	h.routeInvocations(r)
	if cfg.Gatherer != nil {
		r.Handle("/metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	return r
}

// NewInvokeRouter returns only the invocation routes (/function/{name}...)
// and /healthz: what a function's own address is on Kubernetes (its Service),
// for functions that call another function without the gateway. It has no
// /system route, so it may listen where replicas can reach it.
func NewInvokeRouter(cfg Config) http.Handler {
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 5 * time.Minute
	}
	r := mux.NewRouter()
	(&handlers{cfg: cfg}).routeInvocations(r)
	return r
}

// routeInvocations adds the invocation routes, /healthz and the 404 answer.
func (h *handlers) routeInvocations(r *mux.Router) {
	invoke := h.invoke(newInvokeProxy(h.cfg.UpstreamTimeout))
	// No path cleaning: "/function/x/a/../b" is passed on as it is (the
	// function answers it), never redirected to another function's path.
	r.SkipClean(true)
	r.HandleFunc("/function/{name:["+nameExpression+"]+}", invoke)
	r.HandleFunc("/function/{name:["+nameExpression+"]+}/", invoke)
	r.HandleFunc("/function/{name:["+nameExpression+"]+}/{params:.*}", invoke)
	r.HandleFunc("/healthz", healthz).Methods(http.MethodGet, http.MethodHead)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpError(w, http.StatusNotFound, "no route for %s %s", r.Method, r.URL.Path)
	})
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "OK\n")
}

func notImplemented(w http.ResponseWriter, _ *http.Request) {
	httpError(w, http.StatusNotImplemented, "namespace management is not supported: the only namespace is openfaas-fn")
}

// httpError writes a plain-text error message.
func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	http.Error(w, fmt.Sprintf(format, args...), code)
}

// errorStatus maps supervisor and store errors to HTTP status codes.
func errorStatus(err error) int {
	var input *replicas.InputError
	switch {
	case errors.As(err, &input), errors.Is(err, images.ErrNotBuilt):
		return http.StatusBadRequest
	case errors.Is(err, replicas.ErrNotFound), errors.Is(err, secrets.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, replicas.ErrExists), errors.Is(err, secrets.ErrExists):
		return http.StatusConflict
	default:
		return http.StatusInternalServerError
	}
}

// decodeJSON reads a JSON body into v with a size limit and clear errors.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if r.Body == nil {
		return errors.New("request body is empty: expected JSON")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return fmt.Errorf("cannot read request body: %w", err)
	}
	if len(body) == 0 {
		return errors.New("request body is empty: expected JSON")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
