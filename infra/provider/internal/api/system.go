package api

import (
	"net/http"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/naming"
	"adserver/provider/internal/secrets"
)

// ProviderName is what GET /system/info reports.
const ProviderName = "ads-provider"

// GET /system/info
func (h *handlers) info(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, types.ProviderInfo{
		Name:          ProviderName,
		Orchestration: "netns",
		Version:       &types.VersionInfo{SHA: h.cfg.SHA, Release: h.cfg.Version},
	})
}

// GET /system/namespaces
func (h *handlers) namespaces(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []string{naming.Namespace})
}

// /system/secrets: GET lists names, POST creates (409 if it exists), PUT
// replaces and DELETE removes (404 if missing).
func (h *handlers) secrets(w http.ResponseWriter, r *http.Request) {
	if !queryNamespace(w, r) {
		return
	}
	if r.Method == http.MethodGet {
		names, err := h.cfg.Secrets.List()
		if err != nil {
			httpError(w, http.StatusInternalServerError, "cannot list secrets: %v", err)
			return
		}
		out := make([]types.Secret, 0, len(names))
		for _, n := range names {
			out = append(out, types.Secret{Name: n, Namespace: naming.Namespace})
		}
		writeJSON(w, http.StatusOK, out)
		return
	}

	var s types.Secret
	if err := decodeJSON(w, r, &s); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := naming.CheckNamespace(s.Namespace); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := secrets.ValidateName(s.Name); err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	value := s.RawValue
	if len(value) == 0 {
		value = []byte(s.Value)
	}
	if len(value) > secrets.MaxValueLen {
		httpError(w, http.StatusRequestEntityTooLarge, "secret %s is larger than %d bytes", s.Name, secrets.MaxValueLen)
		return
	}

	var err error
	switch r.Method {
	case http.MethodPost:
		err = h.cfg.Secrets.Create(s.Name, value)
	case http.MethodPut:
		err = h.cfg.Secrets.Update(s.Name, value)
	case http.MethodDelete:
		err = h.cfg.Secrets.Delete(s.Name)
	}
	if err != nil {
		code := errorStatus(err)
		switch code {
		case http.StatusConflict:
			httpError(w, code, "secret %s already exists: use PUT to replace it", s.Name)
		case http.StatusNotFound:
			httpError(w, code, "secret %s not found", s.Name)
		default:
			httpError(w, code, "secret %s: %v", s.Name, err)
		}
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
