package replicas

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/images"
	"adserver/provider/internal/watchdog"
)

// Ports and paths of the replica contract. The watchdog (or, in direct
// mode, the template server) listens on FunctionPort; the function's own
// prometheus_client metrics are on MetricsPort; the watchdog's on 8081.
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
	Watchdog   string // empty: direct mode
	HostPATH   string // used only when the image sets no PATH
}

// launch is the command line, environment and working directory of a
// replica, before it is wrapped in `ip netns exec`.
type launch struct {
	Argv []string
	Env  []string
	Dir  string
	// Watchdog is what the provider's proxy enforces for this replica, read
	// from the same environment of-watchdog would read it from.
	Watchdog         watchdog.Config
	WatchdogProblems []string
}

// buildLaunch composes the replica environment the way a container image
// would see it: the image's env, then the deployment's envVars, then
// envProcess as fprocess, then the platform's own variables, which win.
// Nothing else from the provider's environment leaks in, except PATH when
// the image has none.
func buildLaunch(in launchInput) (launch, error) {
	if in.Manifest == nil {
		return launch{}, fmt.Errorf("no image manifest")
	}
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
	argv := strings.Fields(fprocess)
	if len(argv) == 0 {
		return launch{}, fmt.Errorf("fprocess is empty")
	}
	env["fprocess"] = fprocess
	if env["PATH"] == "" {
		env["PATH"] = in.HostPATH
		if env["PATH"] == "" {
			env["PATH"] = defaultPATH
		}
	}
	env["TMPDIR"] = filepath.Join(in.ReplicaDir, replicaTmpDir)
	env["HOSTNAME"] = in.Replica
	env["OPENFAAS_NAME"] = in.Function
	env["OPENFAAS_SECRETS_DIR"] = filepath.Join(in.ReplicaDir, replicaSecretDir)
	env["FUNCTION_METRICS_PORT"] = fmt.Sprint(MetricsPort)
	env["port"] = fmt.Sprint(FunctionPort)
	env["ready_path"] = ReadyPath

	if in.Watchdog != "" {
		if env["mode"] == "" {
			env["mode"] = "http"
		}
		if env["upstream_url"] == "" && env["http_upstream_url"] == "" {
			env["upstream_url"] = defaultUpstream
		}
		argv = []string{in.Watchdog}
	} else {
		env["FUNCTION_PORT"] = fmt.Sprint(FunctionPort)
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
	return launch{Argv: argv, Env: list, Dir: in.Manifest.Workdir, Watchdog: wd, WatchdogProblems: problems}, nil
}
