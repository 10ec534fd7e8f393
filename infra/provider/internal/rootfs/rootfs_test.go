package rootfs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validSpec() Spec {
	return Spec{Lower: "/images/.docker/ab/rootfs", Dir: "/state/replicas/hello-0a1b2c3d", Hostname: "hello-0a1b2c3d",
		Workdir: "/home/app", Argv: []string{"fwatchdog"}, UID: 10001, GID: 10001}
}

func TestEnvCarriesTheSpec(t *testing.T) {
	kv, err := Env(validSpec())
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := strings.CutPrefix(kv, SpecEnv+"=")
	if !ok {
		t.Fatalf("Env = %q", kv)
	}
	var back Spec
	if err := json.Unmarshal([]byte(raw), &back); err != nil || back.Dir != validSpec().Dir || back.UID != 10001 {
		t.Errorf("round trip: %+v %v", back, err)
	}
}

func TestValidate(t *testing.T) {
	for name, mutate := range map[string]func(*Spec){
		"relative lower":   func(s *Spec) { s.Lower = "rootfs" },
		"relative workdir": func(s *Spec) { s.Workdir = "app" },
		"comma in dir":     func(s *Spec) { s.Dir = "/state/a,b" },
		"colon in lower":   func(s *Spec) { s.Lower = "/images/a:b" },
		"no argv":          func(s *Spec) { s.Argv = nil },
		"negative uid":     func(s *Spec) { s.UID = -1 },
	} {
		s := validSpec()
		mutate(&s)
		if _, err := Env(s); err == nil {
			t.Errorf("%s: Env accepted %+v", name, s)
		}
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "fwatchdog")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plain"), []byte(""), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=/", "PATH=/nonexistent:" + dir}
	if got, err := lookPath("fwatchdog", env); err != nil || got != exe {
		t.Errorf("lookPath(fwatchdog) = %q, %v", got, err)
	}
	if got, _ := lookPath("/abs/prog", env); got != "/abs/prog" {
		t.Errorf("an absolute argv[0] is taken as it is, got %q", got)
	}
	for _, missing := range []string{"plain", "nothing"} {
		if _, err := lookPath(missing, env); err == nil {
			t.Errorf("lookPath(%s) found a non-executable or absent file", missing)
		}
	}
}

func TestHostsFile(t *testing.T) {
	if h := hostsFile("hello-0a1b2c3d"); !strings.Contains(h, "127.0.0.1\tlocalhost\n") || !strings.HasSuffix(h, "\thello-0a1b2c3d\n") {
		t.Errorf("hosts file:\n%s", h)
	}
}
