package replicas

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/images"
	"adserver/provider/internal/rootfs"
	"adserver/provider/internal/watchdog"
)

// Ports and paths of the replica contract. of-watchdog listens on
// FunctionPort and serves its metrics on WatchdogMetrics (hard-coded in
// of-watchdog); the template server behind it listens where upstream_url
// says (the template's 5000 by default); the function's own
// prometheus_client metrics are on MetricsPort.
const (
	FunctionPort     = 8080
	WatchdogMetrics  = 8081
	MetricsPort      = 8000
	ReadyPath        = "/_/ready"
	defaultUpstream  = "http://127.0.0.1:5000"
	defaultPATH      = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	replicaTmpDir    = "tmp"
	replicaSecretDir = "secrets"
)

// launchInput is everything that decides how a replica process starts.
type launchInput struct {
	Function   string
	Replica    string
	ReplicaDir string
	Manifest   *images.Manifest
	Spec       types.FunctionDeployment
	Watchdog   string // path of the of-watchdog binary
	HostPATH   string // used only when the image sets no PATH
	Launcher   string // the provider's executable, which starts container images (package rootfs)
}

// launch is the command line, environment and working directory of a
// replica, before it is wrapped in `ip netns exec`.
type launch struct {
	Argv []string
	Env  []string
	Dir  string
	// Watchdog is what the supervisor knows of the replica's of-watchdog
	// (how long it takes to stop), read from the environment it gets.
	Watchdog         watchdog.Config
	WatchdogProblems []string
	// Rootfs is the unpacked image a container image's replica runs from (empty otherwise).
	Rootfs string
}

// buildLaunch composes the replica environment the way a container image
// would see it: the image's env, then the deployment's envVars, then
// envProcess as fprocess, then the platform's own variables, which win.
// Nothing else from the provider's environment leaks in, except PATH when
// the image has none. The command is of-watchdog, which starts fprocess
// itself (mode=http unless the image says otherwise); a container image
// brings its own (its entrypoint), see buildContainerLaunch.
func buildLaunch(in launchInput) (launch, error) {
	if in.Manifest == nil {
		return launch{}, fmt.Errorf("no image manifest")
	}
	if in.Manifest.Container != nil {
		return buildContainerLaunch(in)
	}
	if in.Watchdog == "" {
		return launch{}, fmt.Errorf("no of-watchdog binary")
	}
	env := functionEnv(in)
	if len(strings.Fields(env["fprocess"])) == 0 {
		return launch{}, fmt.Errorf("fprocess is empty")
	}
	if env["PATH"] == "" {
		env["PATH"] = in.HostPATH
		if env["PATH"] == "" {
			env["PATH"] = defaultPATH
		}
	}
	env["TMPDIR"] = filepath.Join(in.ReplicaDir, replicaTmpDir)
	env["OPENFAAS_SECRETS_DIR"] = filepath.Join(in.ReplicaDir, replicaSecretDir)
	list, wd, problems := platformEnv(in, env)
	return launch{Argv: []string{in.Watchdog}, Env: list, Dir: in.Manifest.Workdir, Watchdog: wd, WatchdogProblems: problems}, nil
}

// buildContainerLaunch runs a container image as Docker would: its
// entrypoint and cmd, chrooted into its root filesystem as its user, with
// its env (plus HOME and PATH where it sets none), secrets at
// /var/openfaas/secrets and its own /tmp. The provider's executable is the
// command; it becomes the image's entrypoint (package rootfs).
func buildContainerLaunch(in launchInput) (launch, error) {
	c := in.Manifest.Container
	if in.Launcher == "" {
		return launch{}, fmt.Errorf("image %s is a container image, and the provider's executable is unknown", in.Manifest.Ref)
	}
	env := functionEnv(in)
	if env["PATH"] == "" {
		env["PATH"] = defaultPATH
	}
	if env["HOME"] == "" {
		env["HOME"] = c.Home
		if env["HOME"] == "" {
			env["HOME"] = "/"
		}
	}
	env["OPENFAAS_SECRETS_DIR"] = rootfs.SecretsPath
	list, wd, problems := platformEnv(in, env)
	spec, err := rootfs.Env(rootfs.Spec{
		Lower: c.Rootfs, Dir: in.ReplicaDir, Hostname: in.Replica, Workdir: in.Manifest.Workdir,
		Argv: c.Argv, UID: c.UID, GID: c.GID, Groups: c.Groups,
	})
	if err != nil {
		return launch{}, err
	}
	return launch{
		Argv: []string{in.Launcher}, Env: append(list, spec), Dir: "/", Watchdog: wd, WatchdogProblems: problems,
		Rootfs: c.Rootfs,
	}, nil
}

// functionEnv is the image's env, then the deployment's envVars, with
// fprocess taken from envProcess when the deployment sets it.
func functionEnv(in launchInput) map[string]string {
	env := map[string]string{}
	for k, v := range in.Manifest.Env {
		env[k] = v
	}
	for k, v := range in.Spec.EnvVars {
		env[k] = v
	}
	fprocess := in.Manifest.Fprocess
	if v := env["fprocess"]; strings.TrimSpace(v) != "" {
		fprocess = v
	}
	if strings.TrimSpace(in.Spec.EnvProcess) != "" {
		fprocess = in.Spec.EnvProcess
	}
	if strings.TrimSpace(fprocess) != "" {
		env["fprocess"] = fprocess
	}
	return env
}

// platformEnv adds the variables the platform sets in every replica and the
// watchdog defaults, and returns the sorted KEY=value list.
func platformEnv(in launchInput, env map[string]string) ([]string, watchdog.Config, []string) {
	env["HOSTNAME"] = in.Replica
	env["OPENFAAS_NAME"] = in.Function
	env["FUNCTION_METRICS_PORT"] = fmt.Sprint(MetricsPort)
	env["port"] = fmt.Sprint(FunctionPort)
	env["ready_path"] = ReadyPath

	if env["mode"] == "" {
		env["mode"] = "http"
	}
	if env["upstream_url"] == "" && env["http_upstream_url"] == "" {
		env["upstream_url"] = defaultUpstream
	}
	if strings.TrimSpace(env["healthcheck_interval"]) == "" {
		env["healthcheck_interval"] = watchdog.PlatformHealthcheckInterval
	}
	if strings.TrimSpace(env["prefix_logs"]) == "" {
		// The log store stamps every line with its time and replica already; of-watchdog's
		// "<date> stdout: " prefix would only turn the functions' JSON lines into text.
		env["prefix_logs"] = "false"
	}

	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := make([]string, 0, len(keys))
	for _, k := range keys {
		list = append(list, k+"="+env[k])
	}
	wd, problems := watchdog.FromEnv(env)
	return list, wd, problems
}
