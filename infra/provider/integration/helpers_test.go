package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"adserver/provider/internal/server"
)

// requireRoot skips when not root (network namespaces need it). As root,
// which is how CI runs, nothing is skipped: missing tools fail the test.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("integration tests create network namespaces and need root; CI runs as root")
		}
		t.Skip("integration tests create network namespaces and need root")
	}
	for _, tool := range []string{"ip", "python3"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required for the integration test: %v", tool, err)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testNet is a throwaway bridge with its own CIDR and netns prefix, so the
// test never touches the real provider's ads0 / ads- objects.
type testNet struct {
	Bridge string
	Prefix string
	CIDR   string
}

func setupNetwork(t *testing.T) testNet {
	t.Helper()
	suffix := randHex(2)
	n := testNet{Bridge: "tb" + suffix, Prefix: "t" + suffix + "-"}
	addrs := run(t, "ip", "-4", "-o", "addr") + run(t, "ip", "-4", "route")
	for i := 0; ; i++ {
		b := make([]byte, 1)
		_, _ = rand.Read(b)
		third := int(b[0])
		if !strings.Contains(addrs, fmt.Sprintf("10.199.%d.", third)) {
			n.CIDR = fmt.Sprintf("10.199.%d.0/24", third)
			run(t, "ip", "link", "add", n.Bridge, "type", "bridge")
			t.Cleanup(func() { _ = exec.Command("ip", "link", "del", n.Bridge).Run() })
			run(t, "ip", "addr", "add", fmt.Sprintf("10.199.%d.1/24", third), "dev", n.Bridge)
			run(t, "ip", "link", "set", n.Bridge, "up")
			return n
		}
		if i > 50 {
			t.Fatal("no free 10.199.x.0/24 network")
		}
	}
}

// mac is the bridge's current hardware address.
func (n testNet) mac(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("/sys/class/net", n.Bridge, "address"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

// leftovers lists namespaces and interfaces that carry the prefix.
func (n testNet) leftovers(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(run(t, "ip", "netns", "list"), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], n.Prefix) {
			out = append(out, "netns "+f[0])
		}
	}
	for _, line := range strings.Split(run(t, "ip", "-o", "link", "show"), "\n") {
		parts := strings.SplitN(line, ": ", 3)
		if len(parts) > 1 && strings.HasPrefix(parts[1], n.Prefix) {
			out = append(out, "link "+parts[1])
		}
	}
	return out
}

// localBinary is $key, else the binary `make test` builds into .local/bin.
func localBinary(key, name string) string {
	p := os.Getenv(key)
	if p == "" {
		p = filepath.Join("..", "..", "..", ".local", "bin", name)
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p
}

// watchdogBinary is the real of-watchdog every replica runs. Unlike the
// gateway's tests, nothing runs without it: a missing binary fails.
func watchdogBinary(t *testing.T) string {
	t.Helper()
	p := localBinary("ADS_WATCHDOG_BIN", "of-watchdog")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("of-watchdog not found (set ADS_WATCHDOG_BIN, or run `make test`, which builds it): %v", err)
	}
	return p
}

// realPython finds the interpreter behind python3 (pyenv shims are shell
// scripts that need the caller's environment, which replicas do not get).
func realPython(t *testing.T) string {
	t.Helper()
	out := run(t, "python3", "-c", "import os, sys; print(os.path.realpath(sys.executable))")
	return strings.TrimSpace(out)
}

// functionScript is the test function behind of-watchdog: a tiny
// http.server on upstream_url's port that answers /_/ready, echoes
// $HOSTNAME, dumps its environment and reads its secrets, sleeps on
// /sleep/<ms>, and logs every invocation on stdout. of-watchdog passes
// SIGTERM on at once and drains afterwards, so the server ignores it and
// keeps serving until the watchdog is done (then the runtime kills it).
const functionScript = `import json, os, signal, time, http.server
port = int(os.environ["upstream_url"].rsplit(":", 1)[1])
signal.signal(signal.SIGTERM, signal.SIG_IGN)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, code, body, ctype="text/plain"):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def drain(self):
        # Read the whole request body, sized or chunked (the proxy may stream a body), so a
        # kept-alive connection never parses body bytes as the next request.
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                self.rfile.read(size + 2)
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
    def do_GET(self):
        self.drain()
        if self.path == "/_/ready":
            return self.reply(200, "ok")
        if self.path == "/env":
            return self.reply(200, json.dumps(dict(os.environ)), "application/json")
        if self.path.startswith("/secret/"):
            p = os.path.join(os.environ["OPENFAAS_SECRETS_DIR"], self.path[len("/secret/"):])
            try:
                st = os.stat(p)
                with open(p) as f:
                    return self.reply(200, json.dumps({"value": f.read(), "mode": oct(st.st_mode & 0o777)}), "application/json")
            except OSError as e:
                return self.reply(404, str(e))
        if self.path.startswith("/sleep/"):
            time.sleep(int(self.path[len("/sleep/"):]) / 1000)
        print("invoked " + self.path, flush=True)
        self.reply(200, "hello from " + os.environ.get("HOSTNAME", "?"))
    do_POST = do_GET
    def log_message(self, *args):
        pass
print("listening on %d" % port, flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", port), H).serve_forever()
`

// writeImage creates an image directory for ref the way the orchestrator
// does: code in its own directory, image.json pointing at it.
func writeImage(t *testing.T, imagesDir, ref, script string, env map[string]string) {
	t.Helper()
	code := t.TempDir()
	if err := os.WriteFile(filepath.Join(code, "server.py"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	py := realPython(t)
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["PATH"]; !ok {
		env["PATH"] = filepath.Dir(py) + ":/usr/local/bin:/usr/bin:/bin"
	}
	manifest, _ := json.Marshal(map[string]any{
		"ref": ref, "workdir": code, "fprocess": py + " -u server.py", "env": env,
	})
	dir := filepath.Join(imagesDir, sanitize(ref))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "image.json"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sanitize(ref string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, ref)
}

// syncBuffer collects the provider's log output; it is printed only when a
// test fails, to keep passing runs quiet.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var captureOnce sync.Once
var providerLog = &syncBuffer{}

// instance is a provider running in-process behind two httptest servers.
type instance struct {
	P       *server.Provider
	API     *httptest.Server
	Invoke  *httptest.Server // the invocation routes alone (--invoke-listen)
	Ops     *httptest.Server
	stopped sync.Once
}

func startProvider(t *testing.T, cfg server.Config) *instance {
	t.Helper()
	if cfg.Watchdog == "" {
		cfg.Watchdog = watchdogBinary(t)
	}
	captureOnce.Do(func() { log.SetOutput(providerLog) })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provider log:\n%s", providerLog.String())
		}
	})
	p, err := server.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := p.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	in := &instance{
		P:      p,
		API:    httptest.NewServer(p.APIHandler()),
		Invoke: httptest.NewServer(p.InvokeHandler()),
		Ops:    httptest.NewServer(p.OpsHandler()),
	}
	t.Cleanup(func() { in.Stop(t) })
	return in
}

// Stop shuts the provider down as SIGTERM would.
func (in *instance) Stop(t *testing.T) {
	in.stopped.Do(func() {
		in.API.Close()
		in.Invoke.Close()
		in.Ops.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := in.P.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// client calls the API with or without basic auth.
type client struct {
	t          *testing.T
	base       string
	user, pass string
}

func (c client) do(method, path string, body any) (int, string) {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	hc := &http.Client{Timeout: 20 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// expect asserts the status code (and that the body contains want, if set).
func (c client) expect(code int, want, method, path string, body any) string {
	c.t.Helper()
	got, text := c.do(method, path, body)
	if got != code || (want != "" && !strings.Contains(text, want)) {
		c.t.Fatalf("%s %s: %d %q, want %d containing %q", method, path, got, text, code, want)
	}
	return text
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < timeout {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %s (last state: %s)", what, timeout, last)
	return 0
}

func writeAuth(t *testing.T, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "basic-auth-user"), []byte(user+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "basic-auth-password"), []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
