package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// function is what the autoscaler needs of a FunctionStatus.
type function struct {
	Name              string            `json:"name"`
	Replicas          int               `json:"replicas"`
	AvailableReplicas int               `json:"availableReplicas"`
	Labels            map[string]string `json:"labels"`
}

// platform talks to the OpenFaaS gateway (list, scale) and, for scale to
// zero only, to the provider: the CE gateway clamps scale requests to 1..5.
type platform struct {
	gateway, provider string
	user, password    string
	http              *http.Client
}

// readCredentials reads basic-auth-user and basic-auth-password, as the
// gateway's secret_mount_path holds them.
func readCredentials(dir string) (string, string, error) {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		return strings.TrimSpace(string(b)), err
	}
	user, err := read("basic-auth-user")
	if err != nil {
		return "", "", err
	}
	password, err := read("basic-auth-password")
	return user, password, err
}

func (p platform) do(ctx context.Context, method, url string, body any) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, 0, err
	}
	req.SetBasicAuth(p.user, p.password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return data, resp.StatusCode, nil
}

// functions lists the deployed functions through the gateway.
func (p platform) functions(ctx context.Context) ([]function, error) {
	data, code, err := p.do(ctx, http.MethodGet, p.gateway+"/system/functions", nil)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("gateway: GET /system/functions: HTTP %d: %s", code, bytes.TrimSpace(data))
	}
	var fns []function
	if err := json.Unmarshal(data, &fns); err != nil {
		return nil, fmt.Errorf("gateway: GET /system/functions: %w", err)
	}
	return fns, nil
}

// scale sets a function's replicas: through the gateway's own API, or the
// provider's for zero (which the CE gateway would turn into 1).
func (p platform) scale(ctx context.Context, name string, replicas int) error {
	base, via := p.gateway, "gateway"
	if replicas == 0 {
		base, via = p.provider, "provider"
	}
	body := map[string]any{"serviceName": name, "replicas": replicas, "namespace": "openfaas-fn"}
	data, code, err := p.do(ctx, http.MethodPost, base+"/system/scale-function/"+name, body)
	if err != nil {
		return fmt.Errorf("%s: %w", via, err)
	}
	if code != http.StatusOK && code != http.StatusAccepted {
		return fmt.Errorf("%s: scale %s to %d: HTTP %d: %s", via, name, replicas, code, bytes.TrimSpace(data))
	}
	return nil
}
