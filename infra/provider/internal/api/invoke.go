package api

import (
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"adserver/provider/internal/naming"
	"adserver/provider/internal/watchdog"
)

// invoke serves /function/{name}[/path]: it picks a ready replica with a
// free in-flight slot (round-robin) and forwards through the watchdog proxy
// (max_inflight, exec_timeout, metrics). Failures before a replica is
// chosen get clear answers in the product's error body: an unknown
// function (404) and a function with no ready replica yet (503).
func (h *handlers) invoke(p *watchdog.Proxy) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		vars := mux.Vars(r)
		raw := vars["name"]
		name, err := naming.SplitQualified(raw)
		if err != nil {
			w.Header().Set("X-OpenFaaS-Internal", "proxy")
			watchdog.WriteError(w, r, http.StatusNotFound, watchdog.CodeNotFound, fmt.Sprintf("function %s not found: %v", raw, err))
			return
		}
		target, ok := h.cfg.Supervisor.Pick(name)
		if !ok {
			exists, ready, total := h.cfg.Supervisor.Availability(name)
			w.Header().Set("X-OpenFaaS-Internal", "proxy")
			if !exists {
				watchdog.WriteError(w, r, http.StatusNotFound, watchdog.CodeNotFound, fmt.Sprintf("function %s not found", name))
				return
			}
			w.Header().Set("Retry-After", "1")
			watchdog.WriteError(w, r, http.StatusServiceUnavailable, watchdog.CodeUnavailable,
				fmt.Sprintf("function %s has no ready replica (%d of %d ready); retry shortly", name, ready, total))
			return
		}
		p.Serve(w, r, target, vars["params"])
	}
}

// logs wraps the SDK's logs handler (NDJSON streaming, tail, since, follow)
// with checks on the function name.
func (h *handlers) logs(sdkLogs http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !queryNamespace(w, r) {
			return
		}
		name := r.URL.Query().Get("name")
		if name == "" {
			httpError(w, http.StatusBadRequest, "query parameter name is required")
			return
		}
		fn, err := naming.SplitQualified(name)
		if err != nil {
			httpError(w, http.StatusBadRequest, "%v", err)
			return
		}
		if !h.cfg.Supervisor.Exists(fn) {
			httpError(w, http.StatusNotFound, "function %s not found", fn)
			return
		}
		if fn != name {
			q := r.URL.Query()
			q.Set("name", fn)
			r.URL.RawQuery = q.Encode()
		}
		sdkLogs(w, r)
	}
}
