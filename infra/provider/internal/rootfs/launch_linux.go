package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// launch builds the replica's root and execs its process; it returns only
// on failure. It runs as root in the mount namespace of `ip netns exec`,
// whose mounts propagate nowhere, so nothing here needs undoing.
func launch(s Spec) error {
	// The UTS namespace below is this thread's: exec from the same thread.
	runtime.LockOSThread()
	root := filepath.Join(s.Dir, rootDir)
	upper, work := filepath.Join(s.Dir, upperDir), filepath.Join(s.Dir, workDir)
	for _, d := range []string{root, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", s.Lower, upper, work)
	if err := syscall.Mount("overlay", root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s (%s): %w", root, opts, err)
	}
	if err := mountSystem(root); err != nil {
		return err
	}
	if err := mountSecrets(root, filepath.Join(s.Dir, secrets), s.UID, s.GID); err != nil {
		return err
	}
	if err := writeIdentity(root, s.Hostname); err != nil {
		return err
	}
	// Its own hostname, as a container has: the host's name means nothing
	// inside, and resolving it (Python's http.server does) would wait for DNS.
	if err := syscall.Unshare(syscall.CLONE_NEWUTS); err != nil {
		return fmt.Errorf("unshare the UTS namespace: %w", err)
	}
	if err := syscall.Sethostname([]byte(s.Hostname)); err != nil {
		return fmt.Errorf("sethostname %s: %w", s.Hostname, err)
	}
	// WORKDIR is created if the image lacks it, as Docker does.
	if err := os.MkdirAll(filepath.Join(root, s.Workdir), 0o755); err != nil {
		return err
	}

	if err := syscall.Chroot(root); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	if err := syscall.Chdir(s.Workdir); err != nil {
		return fmt.Errorf("chdir %s inside the image: %w", s.Workdir, err)
	}
	groups := s.Groups
	if groups == nil {
		groups = []int{}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := syscall.Setgid(s.GID); err != nil {
		return fmt.Errorf("setgid %d: %w", s.GID, err)
	}
	if err := syscall.Setuid(s.UID); err != nil {
		return fmt.Errorf("setuid %d: %w", s.UID, err)
	}
	// A change of credentials clears the parent-death signal the provider
	// set; the replica must still die with the provider.
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); e != 0 {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", e)
	}
	env := os.Environ()
	path, err := lookPath(s.Argv[0], env)
	if err != nil {
		return err
	}
	return fmt.Errorf("exec %s: %w", path, syscall.Exec(path, s.Argv, env))
}

// mountSystem gives the root a /proc of its own mount and a minimal /dev
// (the device nodes a container gets, and a /dev/shm).
func mountSystem(root string) error {
	const nodev = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC
	proc := filepath.Join(root, "proc")
	if err := os.MkdirAll(proc, 0o555); err != nil {
		return err
	}
	if err := syscall.Mount("proc", proc, "proc", nodev, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	dev := filepath.Join(root, "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", dev, "tmpfs", syscall.MS_NOSUID, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount /dev: %w", err)
	}
	for _, n := range []struct {
		name         string
		major, minor int
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		p := filepath.Join(dev, n.name)
		if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, n.major<<8|n.minor); err != nil {
			return fmt.Errorf("mknod /dev/%s: %w", n.name, err)
		}
		if err := os.Chmod(p, 0o666); err != nil { // mknod honours the umask
			return err
		}
	}
	for name, target := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return err
	}
	if err := syscall.Mount("shm", shm, "tmpfs", nodev, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	return nil
}

// mountSecrets binds the replica's copies of its secrets read-only at
// /var/openfaas/secrets, owned by the image's user, who must read them.
func mountSecrets(root, src string, uid, gid int) error {
	if err := os.MkdirAll(src, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range append([]os.DirEntry{nil}, entries...) {
		p := src
		if e != nil {
			p = filepath.Join(src, e.Name())
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("secrets: %w", err)
		}
	}
	dst := filepath.Join(root, SecretsPath)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, SecretsPath, err)
	}
	flags := uintptr(syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_NODEV)
	if err := syscall.Mount("", dst, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", SecretsPath, err)
	}
	return nil
}

// writeIdentity writes /etc/hostname, /etc/hosts and /etc/resolv.conf into
// the replica's layer, as Docker does for each container.
func writeIdentity(root, hostname string) error {
	etc := filepath.Join(root, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return err
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		resolv = nil // no resolver configured on the host: none inside either
	}
	for name, data := range map[string][]byte{
		"hostname": []byte(hostname + "\n"), "hosts": []byte(hostsFile(hostname)), "resolv.conf": resolv,
	} {
		p := filepath.Join(etc, name)
		_ = os.Remove(p) // may be a symlink into the image
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
