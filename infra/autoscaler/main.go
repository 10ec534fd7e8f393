// Command ads-autoscaler scales OpenFaaS functions from their
// com.openfaas.scale.* labels, as the OpenFaaS Pro autoscaler does, on the
// CE gateway: it lists functions through the gateway (basic auth), reads
// each one's load from Prometheus (requests per second, requests in flight
// or CPU, per replica, from the replica metrics the provider exports with
// of-watchdog's names), and scales through the gateway's
// /system/scale-function API; to zero, which the CE gateway refuses, it
// goes to the provider, and the gateway's scale_from_zero wakes the
// function on its next request. Every decision is a JSON log line and a
// Prometheus counter.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type options struct {
	Settings
	Listen     string
	Gateway    string
	Provider   string
	Prometheus string
	AuthDir    string
}

// envPrefix: every flag can also be set as ADS_AUTOSCALER_<UPPER_SNAKE>.
const envPrefix = "ADS_AUTOSCALER_"

func parseFlags(args []string, lookupEnv func(string) (string, bool)) (options, error) {
	var o options
	fs := flag.NewFlagSet("ads-autoscaler", flag.ContinueOnError)
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8096", "address of /metrics, /status and /healthz")
	fs.StringVar(&o.Gateway, "gateway", "http://127.0.0.1:8080", "OpenFaaS gateway: list and scale functions")
	fs.StringVar(&o.Provider, "provider", "http://127.0.0.1:8090", "provider API: only for scaling to zero (the CE gateway refuses 0)")
	fs.StringVar(&o.Prometheus, "prometheus", "http://127.0.0.1:9090", "Prometheus HTTP API")
	fs.StringVar(&o.AuthDir, "auth-dir", "", "directory with basic-auth-user and basic-auth-password (required)")
	fs.DurationVar(&o.Interval, "interval", 2*time.Second, "how often every function is evaluated")
	fs.DurationVar(&o.Window, "scale-down-window", time.Minute, "scale-in stabilisation window: replicas drop only after the load has stayed low this long")
	fs.DurationVar(&o.MetricsWindow, "metrics-window", 10*time.Second, "range of the Prometheus rate and average (several 2 s scrapes of the watchdog job)")
	fs.IntVar(&o.MaxReplicas, "max-replicas", 5, "the platform's replica limit per function (caps com.openfaas.scale.max)")
	fs.StringVar(&o.Only, "only-prefix", "", "manage only functions whose name starts with this (empty: every function with scaling labels)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := lookupEnv(name); ok && !set[f.Name] && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return o, envErr
	}
	var problems []string
	if o.AuthDir == "" {
		problems = append(problems, "--auth-dir is required")
	}
	if o.Interval <= 0 || o.MetricsWindow <= 0 || o.Window < 0 {
		problems = append(problems, "--interval and --metrics-window must be positive, --scale-down-window not negative")
	}
	if o.MaxReplicas < 1 {
		problems = append(problems, "--max-replicas must be at least 1")
	}
	if len(problems) > 0 {
		return o, errors.New(strings.Join(problems, "; "))
	}
	return o, nil
}

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil)).With("component", "autoscaler")
	o, err := parseFlags(os.Args[1:], os.LookupEnv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		log.Error("bad configuration", "error", err.Error())
		os.Exit(2)
	}
	if err := run(o, log); err != nil {
		log.Error("fatal", "error", err.Error())
		os.Exit(1)
	}
}

func run(o options, log *slog.Logger) error {
	user, password, err := readCredentials(o.AuthDir)
	if err != nil {
		return fmt.Errorf("--auth-dir: %w", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	plat := platform{
		gateway: strings.TrimRight(o.Gateway, "/"), provider: strings.TrimRight(o.Provider, "/"),
		user: user, password: password, http: client,
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := newScaler(o.Settings, plat, promClient{base: strings.TrimRight(o.Prometheus, "/"), http: client}, log, reg)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"interval": o.Interval.String(), "scaleDownWindow": o.Window.String(), "functions": s.Status(),
		})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("OK\n")) })
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Info("started", "listen", ln.Addr().String(), "gateway", o.Gateway, "prometheus", o.Prometheus,
		"interval", o.Interval.String(), "scale_down_window", o.Window.String(), "metrics_window", o.MetricsWindow.String(),
		"only_prefix", o.Only)
	s.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	log.Info("stopped")
	return nil
}
