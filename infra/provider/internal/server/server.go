// Package server assembles the provider from its parts: it prepares the
// state directory, checks the bridge, sweeps what a crashed run left behind,
// and exposes the API handler (port 8090) and the ops handler (port 8091:
// /metrics, /sd, /healthz). main.go and the integration test both use it,
// so the test exercises exactly what runs in production.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/openfaas/faas-provider/auth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"adserver/provider/internal/api"
	"adserver/provider/internal/dockerimage"
	"adserver/provider/internal/images"
	"adserver/provider/internal/logstore"
	"adserver/provider/internal/naming"
	"adserver/provider/internal/netns"
	"adserver/provider/internal/replicas"
	"adserver/provider/internal/rootfs"
	"adserver/provider/internal/sd"
	"adserver/provider/internal/secrets"
)

// Version is the provider's release, reported by GET /system/info.
const Version = "0.1.0"

// Config is the provider's configuration (see main.go for the flags).
type Config struct {
	StateDir        string
	ImagesDir       string
	AuthDir         string
	Bridge          string
	BridgeCIDR      string
	NetnsPrefix     string
	Watchdog        string
	MaxReplicas     int
	ReadyTimeout    time.Duration
	UpstreamTimeout time.Duration
	LogsTimeout     time.Duration
}

// Provider is a configured provider, ready to Start.
type Provider struct {
	cfg      Config
	net      *netns.Manager
	sup      *replicas.Supervisor
	logs     *logstore.Store
	registry *prometheus.Registry
	api      http.Handler
	invoke   http.Handler
	ops      http.Handler
}

// New validates cfg, prepares directories and the network, and sweeps
// leftovers of a previous run. Deployments are restored by Start.
func New(cfg Config) (*Provider, error) {
	if cfg.StateDir == "" {
		return nil, errors.New("--state-dir is required")
	}
	if cfg.ImagesDir == "" {
		return nil, errors.New("--images-dir is required")
	}
	var err error
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return nil, err
	}
	if cfg.ImagesDir, err = filepath.Abs(cfg.ImagesDir); err != nil {
		return nil, err
	}
	if st, err := os.Stat(cfg.ImagesDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("--images-dir %s is not a directory", cfg.ImagesDir)
	}
	if cfg.MaxReplicas < 1 {
		return nil, fmt.Errorf("--max-replicas must be at least 1")
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("the provider must run as root: it creates network namespaces and veth pairs")
	}

	if cfg.Watchdog == "" {
		return nil, errors.New("--watchdog is required: the path of the of-watchdog binary every replica runs " +
			"(make up builds it into .local/bin/of-watchdog)")
	}
	if cfg.Watchdog, err = filepath.Abs(cfg.Watchdog); err != nil {
		return nil, err
	}
	if st, err := os.Stat(cfg.Watchdog); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("--watchdog %s is not an executable file", cfg.Watchdog)
	}
	log.Printf("replicas run behind of-watchdog %s (port 8080, metrics on 8081)", cfg.Watchdog)

	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// Replica directories belong to replicas of a previous run, which are gone.
	replicaRoot := filepath.Join(cfg.StateDir, "replicas")
	if err := os.RemoveAll(replicaRoot); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(replicaRoot, 0o700); err != nil {
		return nil, err
	}

	alloc, err := netns.NewAllocator(cfg.BridgeCIDR)
	if err != nil {
		return nil, err
	}
	nm, err := netns.New(cfg.NetnsPrefix, cfg.Bridge, alloc)
	if err != nil {
		return nil, err
	}
	warning, err := nm.CheckBridge()
	if err != nil {
		return nil, err
	}
	if warning != "" {
		log.Printf("WARNING: %s", warning)
	}
	if mac, err := nm.PinBridgeAddress(); err != nil {
		return nil, err
	} else if mac != "" {
		log.Printf("bridge %s: address pinned to %s, so replicas coming and going never change it", cfg.Bridge, mac)
	}
	removed, err := nm.Sweep()
	if len(removed) > 0 {
		log.Printf("swept %d leftovers of a previous run: %v", len(removed), removed)
	}
	if err != nil {
		return nil, fmt.Errorf("sweeping leftovers with prefix %q: %w", cfg.NetnsPrefix, err)
	}

	sec, err := secrets.NewStore(filepath.Join(cfg.StateDir, "secrets"))
	if err != nil {
		return nil, err
	}
	ls, err := logstore.New(filepath.Join(cfg.StateDir, "logs"), naming.Namespace)
	if err != nil {
		return nil, err
	}

	var creds *auth.BasicAuthCredentials
	if cfg.AuthDir != "" {
		reader := auth.ReadBasicAuthFromDisk{SecretMountPath: cfg.AuthDir}
		if creds, err = reader.Read(); err != nil {
			return nil, fmt.Errorf("--auth-dir: %w", err)
		}
	} else {
		log.Printf("WARNING: --auth-dir is empty: the /system API is served WITHOUT basic auth")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	launcher, err := rootfs.Self()
	if err != nil {
		return nil, fmt.Errorf("the provider's own executable (it starts container images): %w", err)
	}
	importer := newImporter(cfg.ImagesDir)
	sup, err := replicas.New(replicas.Config{
		StateDir:     cfg.StateDir,
		ImagesDir:    cfg.ImagesDir,
		Watchdog:     cfg.Watchdog,
		MaxReplicas:  cfg.MaxReplicas,
		ReadyTimeout: cfg.ReadyTimeout,
		HostPATH:     os.Getenv("PATH"),
		Resolve:      imageResolver(cfg.ImagesDir, importer),
		Launcher:     launcher,
		Net:          nm,
		IPs:          alloc,
		Secrets:      sec,
		Logs:         ls,
		Registry:     reg,
	})
	if err != nil {
		return nil, err
	}

	if importer != nil {
		importer.InUse = sup.ImageDirs // before any deploy can reach it
	}
	p := &Provider{cfg: cfg, net: nm, sup: sup, logs: ls, registry: reg}
	apiConfig := api.Config{
		Supervisor:      sup,
		Secrets:         sec,
		Logs:            ls,
		Credentials:     creds,
		UpstreamTimeout: cfg.UpstreamTimeout,
		LogsTimeout:     cfg.LogsTimeout,
		Gatherer:        reg,
		Version:         Version,
		SHA:             buildSHA(),
	}
	p.api = api.NewRouter(apiConfig)
	p.invoke = api.NewInvokeRouter(apiConfig)
	ops := http.NewServeMux()
	ops.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ops.Handle("GET /sd", sd.Handler(sup))
	ops.HandleFunc("GET /replicas", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(replicaList(sup.Replicas()))
	})
	ops.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK\n")) })
	p.ops = ops
	return p, nil
}

// newImporter is the importer of images from the local Docker daemon, or
// nil where there is no docker CLI.
func newImporter(imagesDir string) *dockerimage.Importer {
	importer, err := dockerimage.New(imagesDir)
	if err != nil {
		log.Printf("images come only from %s: %v", imagesDir, err)
		return nil
	}
	log.Printf("images come from %s, then from the local Docker daemon (unpacked into %s/%s)", imagesDir, imagesDir, dockerimage.DirName)
	return importer
}

// imageResolver finds an image in imagesDir first (the platform's own
// builds), then, with an importer, in the local Docker daemon (what
// `faas-cli build` made).
func imageResolver(imagesDir string, importer *dockerimage.Importer) func(string) (string, *images.Manifest, error) {
	return func(ref string) (string, *images.Manifest, error) {
		dir, m, err := images.Resolve(imagesDir, ref)
		if importer != nil && errors.Is(err, images.ErrNotBuilt) {
			return importer.Import(ref)
		}
		return dir, m, err
	}
}

// Start re-creates the stored deployments (replicas start in the background).
func (p *Provider) Start() error { return p.sup.Restore() }

// APIHandler serves the faas-provider API and the invocation proxy.
func (p *Provider) APIHandler() http.Handler { return p.api }

// InvokeHandler serves only the invocation routes (--invoke-listen).
func (p *Provider) InvokeHandler() http.Handler { return p.invoke }

// OpsHandler serves /metrics, /sd and /healthz.
func (p *Provider) OpsHandler() http.Handler { return p.ops }

// Supervisor gives tests access to replica details.
func (p *Provider) Supervisor() *replicas.Supervisor { return p.sup }

// Shutdown stops every replica and removes every namespace and veth with
// our prefix, so nothing is left once the provider has exited.
func (p *Provider) Shutdown(ctx context.Context) error {
	err := p.sup.Shutdown(ctx)
	if removed, serr := p.net.Sweep(); serr != nil {
		err = errors.Join(err, serr)
	} else if len(removed) > 0 {
		log.Printf("shutdown: removed %v", removed)
	}
	p.logs.Close()
	return err
}

// replicaJSON is one replica in GET /replicas on the ops port (make status).
type replicaJSON struct {
	Function    string `json:"function"`
	Replica     string `json:"replica"`
	IP          string `json:"ip"`
	PID         int    `json:"pid"` // its of-watchdog's
	Ready       bool   `json:"ready"`
	Stopping    bool   `json:"stopping"`
	Inflight    int    `json:"inflight"`
	MaxInflight int    `json:"maxInflight"`
	Restarts    int    `json:"restarts"`
}

func replicaList(rs []replicas.ReplicaInfo) []replicaJSON {
	out := make([]replicaJSON, 0, len(rs))
	for _, r := range rs {
		out = append(out, replicaJSON{
			Function: r.Function, Replica: r.Replica, IP: r.IP, PID: r.PID, Ready: r.Ready, Stopping: r.Stopping,
			Inflight: r.Inflight, MaxInflight: r.MaxInflight, Restarts: r.Restarts,
		})
	}
	return out
}

// DrainBound is how long shutdown should let invocations finish.
func (p *Provider) DrainBound() time.Duration { return p.sup.DrainBound() }

func buildSHA() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
