package replicas

import (
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/images"
)

func envMap(list []string) map[string]string {
	m := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func testManifest() *images.Manifest {
	return &images.Manifest{
		Workdir:  "/srv/fn",
		Fprocess: "/venv/bin/python index.py",
		Env: map[string]string{
			"PATH": "/venv/bin:/usr/bin", "mode": "http", "upstream_url": "http://127.0.0.1:5000",
			"IMAGE_ONLY": "image", "OVERRIDDEN": "image", "HOSTNAME": "image-host",
		},
	}
}

func TestBuildLaunch(t *testing.T) {
	t.Setenv("ADS_HOST_SECRET", "must-not-leak")
	l, err := buildLaunch(launchInput{
		Function: "noop", Replica: "noop-0a1b2c3d", ReplicaDir: "/state/replicas/noop-0a1b2c3d",
		Manifest: testManifest(),
		Spec:     types.FunctionDeployment{EnvVars: map[string]string{"OVERRIDDEN": "deploy", "FOO": "bar"}},
		Watchdog: "/usr/local/bin/fwatchdog",
		HostPATH: "/host/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(l.Argv, " ") != "/usr/local/bin/fwatchdog" || l.Dir != "/srv/fn" {
		t.Errorf("argv %v dir %s, want the watchdog alone in the image's workdir", l.Argv, l.Dir)
	}
	env := envMap(l.Env)
	want := map[string]string{
		"PATH":                  "/venv/bin:/usr/bin", // the image's PATH wins over the host's
		"IMAGE_ONLY":            "image",
		"OVERRIDDEN":            "deploy",
		"FOO":                   "bar",
		"HOSTNAME":              "noop-0a1b2c3d",
		"OPENFAAS_NAME":         "noop",
		"TMPDIR":                "/state/replicas/noop-0a1b2c3d/tmp",
		"OPENFAAS_SECRETS_DIR":  "/state/replicas/noop-0a1b2c3d/secrets",
		"FUNCTION_METRICS_PORT": "8000",
		"port":                  "8080",
		"ready_path":            "/_/ready",
		"fprocess":              "/venv/bin/python index.py",
		"mode":                  "http",
		"upstream_url":          "http://127.0.0.1:5000",
		"healthcheck_interval":  "1s",
		"prefix_logs":           "false",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, leaked := env["ADS_HOST_SECRET"]; leaked {
		t.Error("host environment leaked into the replica")
	}
	if _, ok := env["FUNCTION_PORT"]; ok {
		t.Error("FUNCTION_PORT set: the template must stay on upstream_url's port behind the watchdog")
	}
}

func TestBuildLaunchDefaultsAndEnvProcess(t *testing.T) {
	m := testManifest()
	delete(m.Env, "PATH")
	delete(m.Env, "mode")
	delete(m.Env, "upstream_url")
	l, err := buildLaunch(launchInput{
		Function: "noop", Replica: "noop-1", ReplicaDir: "/r",
		Manifest: m,
		Spec: types.FunctionDeployment{EnvProcess: "python other.py",
			EnvVars: map[string]string{"healthcheck_interval": "3s", "write_timeout": "4s"}},
		Watchdog: "/usr/local/bin/fwatchdog",
		HostPATH: "/host/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	env := envMap(l.Env)
	for k, v := range map[string]string{
		"fprocess": "python other.py", "mode": "http", "upstream_url": "http://127.0.0.1:5000",
		"port": "8080", "PATH": "/host/bin", "healthcheck_interval": "3s",
	} {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if l.Watchdog.StopBound() != 7*time.Second {
		t.Errorf("stop bound %s, want healthcheck_interval + write_timeout = 7s", l.Watchdog.StopBound())
	}
}

func TestBuildLaunchErrors(t *testing.T) {
	if _, err := buildLaunch(launchInput{Watchdog: "/wd"}); err == nil {
		t.Error("no manifest accepted")
	}
	if _, err := buildLaunch(launchInput{Manifest: testManifest()}); err == nil {
		t.Error("no watchdog accepted")
	}
	m := testManifest()
	m.Fprocess = ""
	if _, err := buildLaunch(launchInput{Manifest: m, Watchdog: "/wd"}); err == nil {
		t.Error("empty fprocess accepted")
	}
}

// A container image runs its own entrypoint through the provider's
// executable (package rootfs), with paths as seen inside the image.
func TestBuildContainerLaunch(t *testing.T) {
	m := &images.Manifest{
		Ref: "hello:latest", Workdir: "/home/app", Fprocess: "python index.py",
		Env: map[string]string{"fprocess": "python index.py", "OVERRIDDEN": "image"},
		Container: &images.Container{
			ID: "sha256:ab", Rootfs: "/images/.docker/ab/rootfs", Argv: []string{"fwatchdog"},
			UID: 10001, GID: 10001, Home: "/home/app",
		},
	}
	in := launchInput{
		Function: "hello", Replica: "hello-0a1b2c3d", ReplicaDir: "/state/replicas/hello-0a1b2c3d", Manifest: m,
		Spec:     types.FunctionDeployment{EnvVars: map[string]string{"OVERRIDDEN": "deploy"}},
		Watchdog: "/usr/local/bin/of-watchdog", HostPATH: "/host/bin", Launcher: "/usr/local/bin/ads-provider",
	}
	l, err := buildLaunch(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(l.Argv, " ") != "/usr/local/bin/ads-provider" || l.Dir != "/" {
		t.Errorf("argv %v dir %s, want the launcher alone", l.Argv, l.Dir)
	}
	env := envMap(l.Env)
	for k, v := range map[string]string{
		"PATH": defaultPATH, "HOME": "/home/app", "OVERRIDDEN": "deploy", "fprocess": "python index.py",
		"OPENFAAS_SECRETS_DIR": "/var/openfaas/secrets", "HOSTNAME": "hello-0a1b2c3d", "port": "8080",
	} {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["TMPDIR"]; ok {
		t.Error("TMPDIR names a host path; a container uses its own /tmp")
	}
	if spec := env["ADS_ROOTFS_SPEC"]; !strings.Contains(spec, `"lower":"/images/.docker/ab/rootfs"`) ||
		!strings.Contains(spec, `"uid":10001`) || !strings.Contains(spec, `"workdir":"/home/app"`) {
		t.Errorf("launcher spec %s", spec)
	}
	in.Launcher = ""
	if _, err := buildLaunch(in); err == nil {
		t.Error("a container image without a launcher must fail")
	}
}
