package api

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/images"
	"adserver/provider/internal/naming"
	"adserver/provider/internal/secrets"
)

// ScaleMinLabel sets a function's initial replica count, as in OpenFaaS.
const ScaleMinLabel = "com.openfaas.scale.min"

// validateDeployment checks a deploy/update request before anything is
// touched and returns the initial replica count (from com.openfaas.scale.min,
// default 1).
func validateDeployment(d *types.FunctionDeployment, maxReplicas int) (int, error) {
	if err := naming.ValidateFunctionName(d.Service); err != nil {
		return 0, err
	}
	if err := naming.CheckNamespace(d.Namespace); err != nil {
		return 0, err
	}
	if err := images.ValidateRef(d.Image); err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, s := range d.Secrets {
		if err := secrets.ValidateName(s); err != nil {
			return 0, err
		}
		if seen[s] {
			return 0, fmt.Errorf("secret %q is listed twice", s)
		}
		seen[s] = true
	}
	for k, v := range d.EnvVars {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return 0, fmt.Errorf("invalid environment variable name %q", k)
		}
		if strings.ContainsRune(v, 0) {
			return 0, fmt.Errorf("environment variable %s contains a NUL byte", k)
		}
	}
	if strings.ContainsRune(d.EnvProcess, 0) {
		return 0, fmt.Errorf("envProcess contains a NUL byte")
	}
	replicas := 1
	if d.Labels != nil {
		if v, ok := (*d.Labels)[ScaleMinLabel]; ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 || n > maxReplicas {
				return 0, fmt.Errorf("label %s=%q must be a whole number between 1 and %d", ScaleMinLabel, v, maxReplicas)
			}
			replicas = n
		}
	}
	return replicas, nil
}

// scaleRequest is types.ScaleServiceRequest with a signed, optional replica
// count, so that -1 or a missing field get a clear message instead of a
// JSON type error.
type scaleRequest struct {
	ServiceName string `json:"serviceName"`
	Replicas    *int64 `json:"replicas"`
	Namespace   string `json:"namespace,omitempty"`
}

// validateScale checks a scale request and returns the replica count.
func validateScale(req scaleRequest, maxReplicas int) (int, error) {
	if err := naming.CheckNamespace(req.Namespace); err != nil {
		return 0, err
	}
	if req.Replicas == nil {
		return 0, fmt.Errorf("replicas is required")
	}
	if *req.Replicas < 0 || *req.Replicas > int64(maxReplicas) {
		return 0, fmt.Errorf("replicas must be between 0 and %d, got %d", maxReplicas, *req.Replicas)
	}
	return int(*req.Replicas), nil
}
