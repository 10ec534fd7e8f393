package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"adserver/provider/internal/server"
)

// envPrefix: every flag can also be set as ADS_PROVIDER_<UPPER_SNAKE>,
// e.g. --state-dir as ADS_PROVIDER_STATE_DIR. A flag on the command line
// wins over the environment.
const envPrefix = "ADS_PROVIDER_"

var errHelp = errors.New("help requested")

type options struct {
	server.Config
	Listen       string
	OpsListen    string
	InvokeListen string
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseFlags(args []string, lookupEnv func(string) (string, bool)) (options, error) {
	var o options
	fs := flag.NewFlagSet("ads-provider", flag.ContinueOnError)
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8090", "address of the provider API (the gateway's functions_provider_url)")
	fs.StringVar(&o.InvokeListen, "invoke-listen", "", "address of the invocation routes alone (/function/{name}), for functions that call each other without the gateway, e.g. the bridge address; empty: none")
	fs.StringVar(&o.OpsListen, "ops-listen", "127.0.0.1:8091", "address of /metrics, /sd (Prometheus http_sd) and /healthz")
	fs.StringVar(&o.StateDir, "state-dir", "", "directory for deployments.json, secrets, replica directories and logs (required)")
	fs.StringVar(&o.ImagesDir, "images-dir", "", "directory holding the built images, one directory per sanitized image reference (required)")
	fs.StringVar(&o.AuthDir, "auth-dir", "", "directory with basic-auth-user and basic-auth-password (the gateway's secret_mount_path); empty disables auth")
	fs.StringVar(&o.Bridge, "bridge", "ads0", "existing Linux bridge that carries the host address")
	fs.StringVar(&o.BridgeCIDR, "bridge-cidr", "10.62.0.0/16", "bridge network: the host is the first address, replicas get .0.10 upwards")
	fs.StringVar(&o.NetnsPrefix, "netns-prefix", "ads-", "prefix of the namespaces and veths this provider creates (at most 6 characters)")
	fs.StringVar(&o.Watchdog, "watchdog", "", "path of the of-watchdog binary every replica runs in front of fprocess (required)")
	fs.IntVar(&o.MaxReplicas, "max-replicas", 5, "maximum replicas per function")
	fs.DurationVar(&o.ReadyTimeout, "ready-timeout", time.Minute, "how long a rolling update waits for a new replica to become ready")
	fs.DurationVar(&o.UpstreamTimeout, "upstream-timeout", 5*time.Minute, "maximum duration of one invocation")
	fs.DurationVar(&o.LogsTimeout, "logs-timeout", 30*time.Second, "maximum duration of one logs request, a followed stream included (faas-cli logs promises up to 30s)")

	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ads-provider --state-dir DIR --images-dir DIR [flags]\n\n"+
			"Every flag can also be set as %s<FLAG_NAME>, e.g. %s.\n\n", envPrefix, envName("state-dir"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, errHelp
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		if v, ok := lookupEnv(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return o, envErr
	}
	if o.StateDir == "" || o.ImagesDir == "" {
		return o, errors.New("--state-dir and --images-dir are required")
	}
	if o.ReadyTimeout <= 0 || o.UpstreamTimeout <= 0 || o.LogsTimeout <= 0 {
		return o, errors.New("--ready-timeout, --upstream-timeout and --logs-timeout must be positive")
	}
	return o, nil
}
