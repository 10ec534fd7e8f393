package api

import (
	"net/http"

	"adserver/provider/internal/naming"
)

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
