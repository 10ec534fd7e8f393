package api

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/naming"
	"adserver/provider/internal/replicas"
)

// queryNamespace checks the ?namespace= parameter most gateway calls carry.
func queryNamespace(w http.ResponseWriter, r *http.Request) bool {
	if err := naming.CheckNamespace(r.URL.Query().Get("namespace")); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return false
	}
	return true
}

// pathFunction returns the function named in the URL path ("name" or
// "name.openfaas-fn"), answering 400 for invalid names.
func pathFunction(w http.ResponseWriter, r *http.Request) (string, bool) {
	name, err := naming.SplitQualified(mux.Vars(r)["name"])
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return "", false
	}
	return name, true
}

// GET /system/functions
func (h *handlers) listFunctions(w http.ResponseWriter, r *http.Request) {
	if !queryNamespace(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, h.cfg.Supervisor.List())
}

// GET /system/function/{name}
func (h *handlers) functionStatus(w http.ResponseWriter, r *http.Request) {
	if !queryNamespace(w, r) {
		return
	}
	name, ok := pathFunction(w, r)
	if !ok {
		return
	}
	st, err := h.cfg.Supervisor.Status(name)
	if err != nil {
		httpError(w, errorStatus(err), "function %s not found", name)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// readDeployment decodes and validates a deploy/update body.
func (h *handlers) readDeployment(w http.ResponseWriter, r *http.Request) (types.FunctionDeployment, int, bool) {
	var d types.FunctionDeployment
	if err := decodeJSON(w, r, &d); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return d, 0, false
	}
	n, err := validateDeployment(&d, h.cfg.Supervisor.MaxReplicas())
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return d, 0, false
	}
	return d, n, true
}

// POST /system/functions
func (h *handlers) deployFunction(w http.ResponseWriter, r *http.Request) {
	d, n, ok := h.readDeployment(w, r)
	if !ok {
		return
	}
	if err := h.cfg.Supervisor.Deploy(d, n); err != nil {
		httpError(w, errorStatus(err), "%v", err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// PUT /system/functions: 404 for an unknown function, so that faas-cli
// falls back to POST.
func (h *handlers) updateFunction(w http.ResponseWriter, r *http.Request) {
	d, _, ok := h.readDeployment(w, r)
	if !ok {
		return
	}
	if err := h.cfg.Supervisor.Update(d); err != nil {
		if errors.Is(err, replicas.ErrNotFound) {
			httpError(w, http.StatusNotFound, "function %s not found", d.Service)
			return
		}
		httpError(w, errorStatus(err), "%v", err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// DELETE /system/functions {functionName, namespace}
func (h *handlers) deleteFunction(w http.ResponseWriter, r *http.Request) {
	var req types.DeleteFunctionRequest
	if err := decodeJSON(w, r, &req); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := naming.CheckNamespace(req.Namespace); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := naming.ValidateFunctionName(req.FunctionName); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := h.cfg.Supervisor.Delete(req.FunctionName); err != nil {
		if errors.Is(err, replicas.ErrNotFound) {
			httpError(w, http.StatusNotFound, "function %s not found", req.FunctionName)
			return
		}
		httpError(w, errorStatus(err), "%v", err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// POST /system/scale-function/{name} {serviceName, replicas, namespace}.
// The name in the path wins, as in faas-netes.
func (h *handlers) scaleFunction(w http.ResponseWriter, r *http.Request) {
	if !queryNamespace(w, r) {
		return
	}
	name, ok := pathFunction(w, r)
	if !ok {
		return
	}
	var req scaleRequest
	if err := decodeJSON(w, r, &req); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	n, err := validateScale(req, h.cfg.Supervisor.MaxReplicas())
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := h.cfg.Supervisor.Scale(name, n); err != nil {
		if errors.Is(err, replicas.ErrNotFound) {
			httpError(w, http.StatusNotFound, "function %s not found", name)
			return
		}
		httpError(w, errorStatus(err), "%v", err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
