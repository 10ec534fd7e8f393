package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"adserver/provider/internal/server"
)

// containerBase is the Python base `make test` builds before these tests
// (infra/docker/local_images.py); a user's image names python:3.11-slim.
const containerBase = "ads-local/python:3.11-bookworm"

// containerFunction is the function in the image: /id tells its uid, gid,
// groups, cwd and what / holds; /write/<path> creates a file.
const containerFunction = `import json, os
import server_base
H = server_base.H
def do_GET(self, base=H.do_GET):
    if self.path == "/id":
        self.drain()
        return self.reply(200, json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
            "cwd": os.getcwd(), "root": sorted(os.listdir("/")), "hostname": open("/etc/hostname").read().strip(), "uts": os.uname().nodename,
            "null": os.path.exists("/dev/null"), "proc": os.path.exists("/proc/self/status")}), "application/json")
    if self.path.startswith("/write/"):
        self.drain()
        p = self.path[len("/write"):]
        try:
            with open(p, "w") as f:
                f.write("x")
            return self.reply(200, "wrote " + p)
        except OSError as e:
            return self.reply(403, str(e))
    return base(self)
H.do_GET = do_GET
server_base.main()
`

// buildContainerImage builds a function image as the template's Dockerfile
// does, in miniature: the real of-watchdog as the entrypoint, a non-root
// user, the function server behind it. It is removed when the test ends.
func buildContainerImage(t *testing.T, tag string) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatalf("docker is required (make test starts dockerd first): %v", err)
	}
	if out, err := exec.Command("docker", "image", "inspect", containerBase).CombinedOutput(); err != nil {
		t.Fatalf("base image %s missing (make test builds it: infra/docker/local_images.py bases): %s", containerBase, out)
	}
	ctx := t.TempDir()
	serve := "print(\"listening on %d\" % port, flush=True)\nhttp.server.ThreadingHTTPServer((\"0.0.0.0\", port), H).serve_forever()\n"
	if !strings.HasSuffix(functionScript, serve) {
		t.Fatal("functionScript no longer ends by serving: adapt buildContainerImage")
	}
	base := strings.Replace(functionScript, "print(\"listening on %d\" % port, flush=True)\nhttp.server.ThreadingHTTPServer((\"0.0.0.0\", port), H).serve_forever()\n",
		"def main():\n    print(\"listening on %d\" % port, flush=True)\n    http.server.ThreadingHTTPServer((\"0.0.0.0\", port), H).serve_forever()\n", 1)
	files := map[string]string{
		"server_base.py": base,
		"server.py":      containerFunction,
		"Dockerfile": fmt.Sprintf(`FROM %s
COPY of-watchdog /usr/bin/fwatchdog
RUN groupadd --system --gid 10001 app && groupadd --system --gid 10002 extra \
 && useradd --system --uid 10001 --gid app --groups extra --home-dir /home/app --create-home app
WORKDIR /home/app
COPY server_base.py server.py ./
USER app
ENV fprocess="python3 -u server.py" upstream_url="http://127.0.0.1:5000" IMAGE_ONLY=image
CMD ["fwatchdog"]
`, containerBase),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(ctx, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wd, err := os.ReadFile(watchdogBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctx, "of-watchdog"), wd, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker", "build", "-q", "-t", tag, ctx)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "--force", tag).Run() })
}

// rebuild gives tag a new image id (one more layer), as an edited function's rebuild does.
func rebuild(t *testing.T, tag, marker string) {
	t.Helper()
	cmd := exec.Command("docker", "build", "-q", "-t", tag, "-")
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	cmd.Stdin = strings.NewReader(fmt.Sprintf("FROM %s\nENV REBUILT=%s\n", tag, marker))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v: %s", err, out)
	}
}

// unpackedCopies lists the image directories under <images>/.docker.
func unpackedCopies(images string) []string {
	dirs, _ := filepath.Glob(filepath.Join(images, ".docker", "[0-9a-f]*"))
	return dirs
}

// TestDockerImage: an image that exists only in the local Docker daemon
// (what `faas-cli build` makes) deploys like a built image directory. Its
// replicas run the image's own entrypoint (of-watchdog) chrooted into its
// filesystem, as its non-root user, with env, secrets, logs, scaling and
// removal as for any replica; the image is unpacked once per image id. A
// reference Docker does not know is a 400 that says so.
func TestDockerImage(t *testing.T) {
	requireRoot(t)
	tag := "ads-test/rootfs-" + randHex(4) + ":1"
	buildContainerImage(t, tag)
	tn := setupNetwork(t)
	images := t.TempDir()
	state := t.TempDir()
	in := startProvider(t, server.Config{
		StateDir: state, ImagesDir: images,
		Bridge: tn.Bridge, BridgeCIDR: tn.CIDR, NetnsPrefix: tn.Prefix,
		MaxReplicas: 5, ReadyTimeout: 20 * time.Second,
	})
	api := client{t: t, base: in.API.URL}
	api.expect(http.StatusAccepted, "", "POST", "/system/secrets", types.Secret{Name: "api-key", Value: "s3cret"})

	api.expect(http.StatusBadRequest, "not in the local Docker daemon", "POST", "/system/functions",
		types.FunctionDeployment{Service: "nosuch", Image: "ads-test/no-such-image-" + randHex(4) + ":1"})

	started := time.Now()
	api.expect(http.StatusAccepted, "", "POST", "/system/functions", types.FunctionDeployment{
		Service: fn, Image: tag, Secrets: []string{"api-key"}, EnvVars: map[string]string{"FOO": "bar"},
	})
	waitAvailable(t, api, fn, 1, 30*time.Second)
	t.Logf("first deploy (unpack included) ready in %s", time.Since(started).Round(time.Millisecond))

	var id struct {
		UID, GID   int
		Groups     []int
		Cwd        string
		Root       []string
		Hostname   string
		Null, Proc bool
		UTS        string
	}
	if err := json.Unmarshal([]byte(api.expect(http.StatusOK, "", "GET", "/function/"+fn+"/id", nil)), &id); err != nil {
		t.Fatal(err)
	}
	r := replicasOf(in.P, fn)[0]
	if id.UID != 10001 || id.GID != 10001 || fmt.Sprint(id.Groups) != "[10002]" || id.Cwd != "/home/app" ||
		id.Hostname != r.Replica || id.UTS != r.Replica || !id.Null || !id.Proc {
		t.Errorf("inside the replica: %+v, want uid/gid 10001, groups [10002], cwd /home/app, hostname %s, /dev/null and /proc", id, r.Replica)
	}
	if strings.Contains(strings.Join(id.Root, " "), "work") || !strings.Contains(strings.Join(id.Root, " "), "usr") {
		t.Errorf("/ inside the replica holds %v, want the image's root", id.Root)
	}
	// The replica's process is the image's of-watchdog, chrooted, as the image's user.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.PID))
	if err != nil || !strings.Contains(string(status), "Uid:\t10001\t10001\t10001\t10001") {
		t.Errorf("replica process status: %v\n%s", err, status)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", r.PID)); !strings.HasSuffix(exe, "/usr/bin/fwatchdog") {
		t.Errorf("replica runs %q, want the image's /usr/bin/fwatchdog", exe)
	}

	var env map[string]string
	if err := json.Unmarshal([]byte(api.expect(http.StatusOK, "", "GET", "/function/"+fn+"/env", nil)), &env); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"IMAGE_ONLY": "image", "FOO": "bar", "HOME": "/home/app", "OPENFAAS_SECRETS_DIR": "/var/openfaas/secrets",
		"fprocess": "python3 -u server.py", "port": "8080", "HOSTNAME": r.Replica,
	} {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if _, leaked := env["ADS_ROOTFS_SPEC"]; leaked {
		t.Error("the launcher's spec leaked into the function's environment")
	}
	api.expect(http.StatusOK, `"value": "s3cret"`, "GET", "/function/"+fn+"/secret/api-key", nil)
	// The image's files are the image's: the user may write its home, not /usr; the
	// shared unpacked root is never written.
	api.expect(http.StatusOK, "wrote", "GET", "/function/"+fn+"/write/home/app/scratch", nil)
	api.expect(http.StatusForbidden, "Permission denied", "GET", "/function/"+fn+"/write/usr/scratch", nil)
	unpacked, _ := filepath.Glob(filepath.Join(images, ".docker", "*", "rootfs"))
	if len(unpacked) != 1 {
		t.Fatalf("unpacked roots: %v, want exactly one", unpacked)
	}
	if _, err := os.Stat(filepath.Join(unpacked[0], "home", "app", "scratch")); err == nil {
		t.Error("a replica wrote into the shared unpacked image")
	}

	api.expect(http.StatusOK, "hello from", "GET", "/function/"+fn+"/logged", nil)
	eventually(t, 5*time.Second, "the function's log line", func() (bool, string) {
		_, logs := api.do("GET", "/system/logs?name="+fn+"&tail=50", nil)
		return strings.Contains(logs, "invoked /logged"), logs
	})

	// Scaling: a second replica of the same image, its own root and user.
	api.expect(http.StatusAccepted, "", "POST", "/system/scale-function/"+fn, map[string]any{"serviceName": fn, "replicas": 2})
	waitAvailable(t, api, fn, 2, 20*time.Second)
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		seen[api.expect(http.StatusOK, "hello from", "GET", "/function/"+fn, nil)] = true
	}
	if len(seen) != 2 {
		t.Errorf("answers from %d replicas, want 2: %v", len(seen), seen)
	}

	// A second function of the same image reuses the unpacked root.
	api.expect(http.StatusAccepted, "", "POST", "/system/functions", types.FunctionDeployment{Service: "echo2", Image: tag})
	waitAvailable(t, api, "echo2", 1, 20*time.Second)
	if again, _ := filepath.Glob(filepath.Join(images, ".docker", "*")); len(again) != 1 {
		t.Errorf("image directories after a second deploy: %v, want the same one", again)
	}
	if n := strings.Count(providerLog.String(), "image "+tag+": unpacked Docker image"); n != 1 {
		t.Errorf("the image was unpacked %d times, want once", n)
	}
	first := unpackedCopies(images)

	// A rebuilt tag is unpacked at its next deploy; the copy of its old id stays while
	// functions use it.
	rebuild(t, tag, "1")
	api.expect(http.StatusAccepted, "", "POST", "/system/functions", types.FunctionDeployment{Service: "echo3", Image: tag})
	waitAvailable(t, api, "echo3", 1, 20*time.Second)
	if copies := unpackedCopies(images); len(copies) != 2 {
		t.Errorf("copies after a rebuild while the old one is in use: %v, want 2", copies)
	}
	second := ""
	for _, c := range unpackedCopies(images) {
		if c != first[0] {
			second = c
		}
	}

	// A crashed replica restarts in its own root again (the overlay is mounted anew over the
	// same layer, so what it wrote is still there, as after a container restart).
	api.expect(http.StatusOK, "wrote", "GET", "/function/echo2/write/home/app/kept", nil)
	victim := replicasOf(in.P, "echo2")[0]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "echo2 restarted and ready", func() (bool, string) {
		rs := replicasOf(in.P, "echo2")
		return len(rs) == 1 && rs[0].Restarts >= 1 && rs[0].Ready, fmt.Sprint(rs)
	})
	api.expect(http.StatusOK, "hello from", "GET", "/function/echo2", nil)
	kept := filepath.Join(state, "replicas", victim.Replica, "upper", "home", "app", "kept")
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the replica's layer lost what it wrote before the crash: %v", err)
	}

	// A restarted provider brings both functions back from deployments.json.
	in.Stop(t)
	in = startProvider(t, server.Config{
		StateDir: state, ImagesDir: images,
		Bridge: tn.Bridge, BridgeCIDR: tn.CIDR, NetnsPrefix: tn.Prefix,
		MaxReplicas: 5, ReadyTimeout: 20 * time.Second,
	})
	api = client{t: t, base: in.API.URL}
	waitAvailable(t, api, fn, 2, 20*time.Second)
	waitAvailable(t, api, "echo2", 1, 20*time.Second)
	waitAvailable(t, api, "echo3", 1, 20*time.Second)
	api.expect(http.StatusOK, `"uid": 10001`, "GET", "/function/"+fn+"/id", nil)

	api.expect(http.StatusAccepted, "", "DELETE", "/system/functions", map[string]string{"functionName": fn})
	api.expect(http.StatusAccepted, "", "DELETE", "/system/functions", map[string]string{"functionName": "echo2"})
	api.expect(http.StatusNotFound, "", "GET", "/function/"+fn, nil)

	// Once nothing uses the first copy, the next rebuild's unpack removes it; echo3's copy
	// stays until echo3 has rolled onto the new one.
	rebuild(t, tag, "2")
	api.expect(http.StatusAccepted, "", "PUT", "/system/functions", types.FunctionDeployment{Service: "echo3", Image: tag})
	copies := unpackedCopies(images)
	if len(copies) != 2 || copies[0] == first[0] || copies[1] == first[0] || (copies[0] != second && copies[1] != second) {
		t.Errorf("copies after the second rebuild: %v, want echo3's %s and the new one, not %s", copies, second, first[0])
	}
	eventually(t, 20*time.Second, "echo3 on the rebuilt image", func() (bool, string) {
		_, body := api.do("GET", "/function/echo3/env", nil)
		return strings.Contains(body, `"REBUILT": "2"`), body
	})
	api.expect(http.StatusAccepted, "", "DELETE", "/system/functions", map[string]string{"functionName": "echo3"})
	in.Stop(t)
	if left := tn.leftovers(t); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), state) {
		t.Errorf("mounts left on the host under %s:\n%s", state, mounts)
	}
	if dirs, _ := os.ReadDir(filepath.Join(state, "replicas")); len(dirs) != 0 {
		t.Errorf("replica directories left: %v", dirs)
	}
}
