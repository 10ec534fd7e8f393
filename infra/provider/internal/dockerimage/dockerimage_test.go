package dockerimage

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

const passwd = `root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:10001:10001::/home/app:/bin/sh
nohome:x:10003:10003:::/bin/sh
`

const group = `root:x:0:
daemon:x:1:
app:x:10001:
extra:x:10002:app,daemon
audio:x:29:daemon,app
nohome:x:10003:
`

func TestResolveUser(t *testing.T) {
	cases := []struct {
		spec string
		want string // uid gid groups home
	}{
		{"", "0 0 [] /"},
		{"root", "0 0 [] /root"},
		{"app", "10001 10001 [29 10002] /home/app"},
		{"10001", "10001 10001 [29 10002] /home/app"}, // a number found in passwd is that user
		{"4242", "4242 0 [] /"},                       // a number need not exist, as in Docker
		{"app:audio", "10001 29 [] /home/app"},        // an explicit group replaces the lists
		{"app:7", "10001 7 [] /home/app"},
		{"4242:4343", "4242 4343 [] /"},
		{"nohome", "10003 10003 [] /"},
		{"daemon", "1 1 [29 10002] /usr/sbin"},
	}
	for _, c := range cases {
		u, err := resolveUser(c.spec, passwd, group)
		if err != nil {
			t.Errorf("resolveUser(%q): %v", c.spec, err)
			continue
		}
		groups := u.groups
		if groups == nil {
			groups = []int{}
		}
		if got := fmt.Sprintf("%d %d %v %s", u.uid, u.gid, groups, u.home); got != c.want {
			t.Errorf("resolveUser(%q) = %s, want %s", c.spec, got, c.want)
		}
	}
	for _, bad := range []string{"nobody-here", "app:nogroup", "-1"} {
		if _, err := resolveUser(bad, passwd, group); err == nil {
			t.Errorf("resolveUser(%q) = nil error, want one", bad)
		}
	}
}

func TestParseInspect(t *testing.T) {
	id := "sha256:" + fmt.Sprintf("%064x", 42)
	c, err := parseInspect([]byte(`{"Id":"` + id + `","Config":{"Entrypoint":["/usr/bin/fwatchdog"],"Cmd":null,` +
		`"Env":["PATH=/usr/local/bin:/usr/bin","fprocess=python index.py","EMPTY="],"WorkingDir":"/home/app","User":"10001"}}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := manifest("ads/hello:latest", c, "/images/.docker/x/rootfs", root)
	if err != nil {
		t.Fatal(err)
	}
	if m.Workdir != "/home/app" || m.Fprocess != "python index.py" || m.Env["EMPTY"] != "" || m.Env["PATH"] != "/usr/local/bin:/usr/bin" {
		t.Errorf("manifest %+v", m)
	}
	ct := m.Container
	if ct.ID != id || ct.Rootfs != "/images/.docker/x/rootfs" || fmt.Sprint(ct.Argv) != "[/usr/bin/fwatchdog]" ||
		ct.UID != 10001 || ct.GID != 10001 || ct.Home != "/home/app" {
		t.Errorf("container %+v", ct)
	}

	c.Config.WorkingDir, c.Config.Entrypoint, c.Config.Cmd = "", []string{"/bin/sh", "-c"}, []string{"exec fwatchdog"}
	m, err = manifest("x", c, "/r", root)
	if err != nil || m.Workdir != "/" || fmt.Sprint(m.Container.Argv) != "[/bin/sh -c exec fwatchdog]" {
		t.Errorf("entrypoint + cmd: %+v %v", m, err)
	}
	for _, bad := range []string{`{"Id":"abc","Config":{}}`, `not json`} {
		if _, err := parseInspect([]byte(bad)); err == nil {
			t.Errorf("parseInspect(%s) = nil error", bad)
		}
	}
}

// writeCopy makes an unpacked copy of ref named id, as unpack leaves one.
func writeCopy(t *testing.T, dir, id, ref string) string {
	t.Helper()
	copyDir := filepath.Join(dir, id)
	if err := os.MkdirAll(filepath.Join(copyDir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf(`{"ref":%q,"workdir":"/","env":{},"container":{"id":"sha256:%s","rootfs":%q,"argv":["fwatchdog"]}}`,
		ref, id, filepath.Join(copyDir, "rootfs"))
	if err := os.WriteFile(filepath.Join(copyDir, "image.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return copyDir
}

func TestPruneSuperseded(t *testing.T) {
	dir := t.TempDir()
	current := writeCopy(t, dir, "cc", "hello:latest")
	old := writeCopy(t, dir, "aa", "hello:latest")
	used := writeCopy(t, dir, "bb", "hello:latest")
	other := writeCopy(t, dir, "dd", "other:latest")
	unpacking := filepath.Join(dir, ".tmp-123")
	if err := os.Mkdir(unpacking, 0o755); err != nil {
		t.Fatal(err)
	}
	im := &Importer{dir: dir, InUse: func() map[string]bool { return map[string]bool{used: true} }}
	im.pruneSuperseded("hello:latest", current)
	for path, want := range map[string]bool{current: true, old: false, used: true, other: true, unpacking: true} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", filepath.Base(path), err == nil, want)
		}
	}
}
