package replicas

import (
	"strings"
	"testing"

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

func TestBuildLaunchDirect(t *testing.T) {
	t.Setenv("ADS_HOST_SECRET", "must-not-leak")
	l, err := buildLaunch(launchInput{
		Function: "noop", Replica: "noop-0a1b2c3d", ReplicaDir: "/state/replicas/noop-0a1b2c3d",
		Manifest: testManifest(),
		Spec:     types.FunctionDeployment{EnvVars: map[string]string{"OVERRIDDEN": "deploy", "FOO": "bar"}},
		HostPATH: "/host/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(l.Argv, " ") != "/venv/bin/python index.py" || l.Dir != "/srv/fn" {
		t.Errorf("argv %v dir %s", l.Argv, l.Dir)
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
		"FUNCTION_PORT":         "8080",
		"FUNCTION_METRICS_PORT": "8000",
		"port":                  "8080",
		"ready_path":            "/_/ready",
		"fprocess":              "/venv/bin/python index.py",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, leaked := env["ADS_HOST_SECRET"]; leaked {
		t.Error("host environment leaked into the replica")
	}
}

func TestBuildLaunchWatchdogAndEnvProcess(t *testing.T) {
	m := testManifest()
	delete(m.Env, "PATH")
	delete(m.Env, "mode")
	delete(m.Env, "upstream_url")
	l, err := buildLaunch(launchInput{
		Function: "noop", Replica: "noop-1", ReplicaDir: "/r",
		Manifest: m,
		Spec:     types.FunctionDeployment{EnvProcess: "python other.py"},
		Watchdog: "/usr/local/bin/fwatchdog",
		HostPATH: "/host/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Argv) != 1 || l.Argv[0] != "/usr/local/bin/fwatchdog" {
		t.Errorf("argv = %v, want the watchdog alone", l.Argv)
	}
	env := envMap(l.Env)
	for k, v := range map[string]string{
		"fprocess": "python other.py", "mode": "http", "upstream_url": "http://127.0.0.1:5000",
		"port": "8080", "PATH": "/host/bin",
	} {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["FUNCTION_PORT"]; ok {
		t.Error("FUNCTION_PORT set in watchdog mode: the template must stay on 5000 behind the watchdog")
	}
}

func TestBuildLaunchErrors(t *testing.T) {
	if _, err := buildLaunch(launchInput{}); err == nil {
		t.Error("no manifest accepted")
	}
	m := testManifest()
	m.Fprocess = ""
	if _, err := buildLaunch(launchInput{Manifest: m}); err == nil {
		t.Error("empty fprocess accepted")
	}
}
