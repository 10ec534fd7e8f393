// Command compose-provider is the OpenFaaS provider of docker-compose.yml: the functions are
// compose services (one container each, built from the template's Dockerfile), and this tells
// the real gateway which there are and where they answer. It deploys, scales and removes
// nothing: compose does that (`docker compose up --scale serve=3` puts more replicas behind the
// one service name, which Docker's DNS spreads over).
//
// The functions, their labels and annotations (`topic` for the Kafka connector) come from the
// stack file, the same one faas-cli reads. A function counts as available while its
// of-watchdog answers /_/ready (which asks the function itself).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	bootstrap "github.com/openfaas/faas-provider"
	"github.com/openfaas/faas-provider/proxy"
	"github.com/openfaas/faas-provider/types"
	"gopkg.in/yaml.v3"
)

type stackFunction struct {
	Image       string            `yaml:"image"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type stack struct {
	Functions map[string]stackFunction `yaml:"functions"`
}

// provider answers from the stack file; each function is reached at http://<name>:<port>.
// Every function is in one namespace, the one the gateway names in its metrics
// (function_namespace): the gateway finds a function's invocation count in Prometheus under
// "<name>.<namespace>", so both must agree for `faas-cli list` to show real counts.
type provider struct {
	functions map[string]stackFunction
	namespace string
	port      int
	started   time.Time
	probe     *http.Client
}

func (p *provider) Resolve(name string) (url.URL, error) {
	name = strings.TrimSuffix(name, "."+p.namespace)
	if _, ok := p.functions[name]; !ok {
		return url.URL{}, fmt.Errorf("no function %q in the stack file", name)
	}
	return url.URL{Scheme: "http", Host: fmt.Sprintf("%s:%d", name, p.port)}, nil
}

func (p *provider) status(name string) types.FunctionStatus {
	fn := p.functions[name]
	labels, annotations := fn.Labels, fn.Annotations
	available := uint64(0)
	if r, err := p.probe.Get(fmt.Sprintf("http://%s:%d/_/ready", name, p.port)); err == nil {
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			available = 1
		}
	}
	return types.FunctionStatus{
		Name: name, Namespace: p.namespace, Image: fn.Image, Labels: &labels, Annotations: &annotations,
		Replicas: 1, AvailableReplicas: available, CreatedAt: p.started,
	}
}

func (p *provider) list(w http.ResponseWriter, _ *http.Request) {
	names := make([]string, 0, len(p.functions))
	for name := range p.functions {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]types.FunctionStatus, 0, len(names))
	for _, name := range names {
		out = append(out, p.status(name))
	}
	writeJSON(w, http.StatusOK, out)
}

func (p *provider) describe(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if _, ok := p.functions[name]; !ok {
		http.Error(w, "no such function", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, p.status(name))
}

// composeOnly answers what compose does instead of a provider.
func composeOnly(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "functions are compose services here: change docker-compose.yml and run "+
		"`docker compose up -d` (scale with --scale NAME=N)", http.StatusNotImplemented)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func env(key, fallback string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return fallback
}

func main() {
	log.SetPrefix("compose-provider: ")
	stackFile := env("STACK_FILE", "/etc/openfaas/stack.yml")
	raw, err := os.ReadFile(stackFile)
	if err != nil {
		log.Fatalf("reading the stack file: %v", err)
	}
	var s stack
	if err := yaml.Unmarshal(raw, &s); err != nil {
		log.Fatalf("%s: %v", stackFile, err)
	}
	port, err := strconv.Atoi(env("FUNCTION_PORT", "8080"))
	if err != nil {
		log.Fatalf("FUNCTION_PORT: %v", err)
	}
	listen, err := strconv.Atoi(env("PORT", "8081"))
	if err != nil {
		log.Fatalf("PORT: %v", err)
	}
	timeout, err := time.ParseDuration(env("UPSTREAM_TIMEOUT", "65s"))
	if err != nil {
		log.Fatalf("UPSTREAM_TIMEOUT: %v", err)
	}
	p := &provider{
		functions: s.Functions,
		namespace: env("FUNCTION_NAMESPACE", "openfaas-fn"),
		port:      port,
		started:   time.Now().UTC(),
		probe:     &http.Client{Timeout: 2 * time.Second},
	}
	config := types.FaaSConfig{
		TCPPort:         &listen,
		ReadTimeout:     timeout,
		WriteTimeout:    timeout,
		EnableBasicAuth: env("basic_auth", "true") == "true",
		SecretMountPath: env("secret_mount_path", "/run/secrets/"),
	}
	handlers := &types.FaaSHandlers{
		FunctionProxy:  proxy.NewHandlerFunc(config, p, false),
		FunctionLister: p.list,
		FunctionStatus: p.describe,
		DeployFunction: composeOnly,
		UpdateFunction: composeOnly,
		DeleteFunction: composeOnly,
		ScaleFunction:  composeOnly,
		Secrets:        composeOnly,
		Logs:           composeOnly,
		ListNamespaces: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, []string{p.namespace})
		},
		Info: func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, types.ProviderInfo{
				Name: "compose-provider", Orchestration: "docker-compose",
				Version: &types.VersionInfo{Release: "0.1.0"},
			})
		},
		Health: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) },
	}
	log.Printf("%d functions from %s; listening on :%d", len(p.functions), stackFile, listen)
	bootstrap.Serve(context.Background(), handlers, &config)
}
