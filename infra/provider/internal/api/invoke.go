package api

import (
	"net/http"

	"github.com/gorilla/mux"

	"adserver/provider/internal/naming"
)

// invoke wraps the SDK's invocation proxy (which resolves replicas through
// Supervisor.Resolve, round-robin over ready replicas) with clearer answers
// for the two common failures: an unknown function (404) and a function
// with no ready replica yet (503 with the replica count).
func (h *handlers) invoke(sdkProxy http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := mux.Vars(r)["name"]
		name, err := naming.SplitQualified(raw)
		if err != nil {
			w.Header().Set("X-OpenFaaS-Internal", "proxy")
			httpError(w, http.StatusNotFound, "function %s not found: %v", raw, err)
			return
		}
		exists, ready, total := h.cfg.Supervisor.Availability(name)
		if !exists {
			w.Header().Set("X-OpenFaaS-Internal", "proxy")
			httpError(w, http.StatusNotFound, "function %s not found", name)
			return
		}
		if ready == 0 {
			w.Header().Set("X-OpenFaaS-Internal", "proxy")
			w.Header().Set("Retry-After", "1")
			httpError(w, http.StatusServiceUnavailable, "function %s has no ready replica (%d of %d ready); retry shortly", name, ready, total)
			return
		}
		sdkProxy(w, r)
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
