// Package rootfs starts a replica's process inside a container image's root
// filesystem, as a container runtime would: in the replica's own mount
// namespace (the one `ip netns exec` creates), it mounts an overlay of the
// image's unpacked root (shared, read-only) and the replica's own writable
// layer, a fresh /proc, a small /dev and the replica's secrets at
// /var/openfaas/secrets, then chroots into it, becomes the image's user and
// execs the image's entrypoint.
//
// The provider's own executable does this: the replica's command line is the
// provider's path, with the Spec in the environment variable SpecEnv. Every
// binary that links this package (the provider, its test binaries) checks
// that variable before main runs, and when it is set, becomes the launcher
// and never returns. Mounts vanish with the mount namespace when the
// replica's last process exits; the writable layer stays in the replica's
// directory until the replica is removed, as a container's does until
// `docker rm`.
//
// Example, what the supervisor hands to `ip netns exec <ns>`:
//
//	env, _ := rootfs.Env(rootfs.Spec{Lower: "/images/.docker/<id>/rootfs", Dir: replicaDir, ...})
//	argv := []string{rootfs.Self(), "rootfs-launcher"}   // env appended to the replica's env
package rootfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// SpecEnv carries the JSON Spec from the supervisor to the launcher.
const SpecEnv = "ADS_ROOTFS_SPEC"

// SecretsPath is where OpenFaaS mounts a function's secrets.
const SecretsPath = "/var/openfaas/secrets"

// Layout of a replica directory that runs a container image.
const (
	upperDir = "upper" // the replica's writable layer
	workDir  = "work"  // overlayfs' scratch directory
	rootDir  = "root"  // where the overlay is mounted
	secrets  = "secrets"
)

// Spec is everything the launcher needs to start one replica process.
type Spec struct {
	Lower    string   `json:"lower"`    // the image's unpacked root filesystem (never written)
	Dir      string   `json:"dir"`      // the replica directory: upper/, work/, root/, secrets/
	Hostname string   `json:"hostname"` // written to /etc/hostname and /etc/hosts
	Workdir  string   `json:"workdir"`  // inside the image
	Argv     []string `json:"argv"`     // entrypoint and cmd; argv[0] is looked up in PATH
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	Groups   []int    `json:"groups"`
}

// Validate reports the first problem that would stop the launcher.
func (s Spec) Validate() error {
	for name, p := range map[string]string{"lower": s.Lower, "dir": s.Dir, "workdir": s.Workdir} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("rootfs spec: %s %q must be an absolute path", name, p)
		}
	}
	// overlayfs separates its options with commas and its lower layers with colons.
	for _, p := range []string{s.Lower, s.Dir} {
		if strings.ContainsAny(p, ",:") {
			return fmt.Errorf("rootfs spec: path %q holds a comma or colon, which overlayfs cannot take", p)
		}
	}
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return errors.New("rootfs spec: empty argv")
	}
	if s.UID < 0 || s.GID < 0 {
		return fmt.Errorf("rootfs spec: uid %d / gid %d", s.UID, s.GID)
	}
	return nil
}

// Env is the SpecEnv=<json> entry that turns the provider's executable into
// the launcher of spec.
func Env(spec Spec) (string, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	return SpecEnv + "=" + string(data), nil
}

// self is this process's executable, read before anything can replace it.
var self, selfErr = os.Executable()

// Self is the path of the running executable, which launches container
// replicas (see the package comment).
func Self() (string, error) { return self, selfErr }

func init() {
	raw, ok := os.LookupEnv(SpecEnv)
	if !ok {
		return
	}
	os.Unsetenv(SpecEnv)
	var spec Spec
	err := json.Unmarshal([]byte(raw), &spec)
	if err == nil {
		err = spec.Validate()
	}
	if err == nil {
		err = launch(spec) // returns only on failure
	}
	fmt.Fprintf(os.Stderr, "ads-provider rootfs launcher: %v\n", err)
	os.Exit(127)
}

// lookPath finds argv[0] as execvp would, under PATH from env, resolving
// each candidate inside the (already entered) root.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s inside the image", name, path)
}

// hostsFile is /etc/hosts as Docker writes it for a container on its own network.
func hostsFile(hostname string) string {
	return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n"
}
