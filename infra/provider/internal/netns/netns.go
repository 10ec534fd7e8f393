// Package netns gives each replica what a container runtime would: its own
// network namespace, a veth pair whose host end is plugged into our bridge,
// an address on the bridge network and a default route via the host.
//
// Everything is done by running iproute2's `ip`, which is what an operator
// would type to inspect or repair it, and which needs no netlink code here.
// All names start with a configurable prefix so that a crashed provider's
// leftovers can be found and swept on the next start.
package netns

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MaxPrefixLen keeps interface names within the kernel's 15 characters:
// prefix + 8 hex characters + 1 suffix character.
const MaxPrefixLen = 6

// IDLen is the length of a replica id (hex characters).
const IDLen = 8

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// Manager creates and deletes replica sandboxes.
type Manager struct {
	ipPath string
	prefix string
	bridge string
	alloc  *Allocator
}

// New checks the settings and finds the `ip` binary.
func New(prefix, bridge string, alloc *Allocator) (*Manager, error) {
	if len(prefix) == 0 || len(prefix) > MaxPrefixLen || !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("netns prefix %q must be 1-%d characters of [a-z0-9-], starting with a letter", prefix, MaxPrefixLen)
	}
	if bridge == "" || len(bridge) > 15 {
		return nil, fmt.Errorf("bridge name %q must be 1-15 characters", bridge)
	}
	if strings.HasPrefix(bridge, prefix) {
		return nil, fmt.Errorf("bridge %q starts with the netns prefix %q: the startup sweep would delete it", bridge, prefix)
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("iproute2 `ip` not found in PATH: %w", err)
	}
	return &Manager{ipPath: ipPath, prefix: prefix, bridge: bridge, alloc: alloc}, nil
}

// Namespace is the network namespace name of replica id.
func (m *Manager) Namespace(id string) string { return m.prefix + id }

// hostVeth is the bridge-side end of the replica's veth pair.
func (m *Manager) hostVeth(id string) string { return m.prefix + id + "h" }

// peerVeth is the replica-side end before it is renamed eth0 inside the namespace.
func (m *Manager) peerVeth(id string) string { return m.prefix + id + "c" }

// ExecArgs returns the argv that runs argv inside replica id's namespace.
func (m *Manager) ExecArgs(id string, argv []string) []string {
	return append([]string{m.ipPath, "netns", "exec", m.Namespace(id)}, argv...)
}

func (m *Manager) ip(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.ipPath, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// CheckBridge verifies that the bridge exists. It returns a warning (not an
// error) when the bridge lacks the host address, since replicas could then
// not reach the host.
func (m *Manager) CheckBridge() (warning string, err error) {
	if _, err := m.ip("-o", "link", "show", "dev", m.bridge); err != nil {
		return "", fmt.Errorf("bridge %s does not exist (it is created by the orchestrator, e.g. make up): %w", m.bridge, err)
	}
	out, err := m.ip("-o", "-4", "addr", "show", "dev", m.bridge)
	if err != nil {
		return "", err
	}
	want := fmt.Sprintf("%s/%d", m.alloc.Host(), m.alloc.Prefix().Bits())
	if !strings.Contains(out, " "+want+" ") {
		return fmt.Sprintf("bridge %s does not have address %s: replicas will not reach the host", m.bridge, want), nil
	}
	return "", nil
}

// PinBridgeAddress gives the bridge a fixed MAC address (setting it by hand also stops the
// kernel from changing it). Left to itself, a Linux bridge takes the lowest MAC of its ports,
// so adding or deleting one replica's veth changes the address every other replica has cached
// for its gateway: their answers then go to a MAC nobody has until the neighbour entry
// expires, and a request in flight on another replica is never answered. The address is
// derived from the bridge's name, so it is the same on every start. (sysfs would tell whether
// someone already set one, but it shows the network namespace that mounted it, which need not
// be the provider's.)
func (m *Manager) PinBridgeAddress() (pinned string, err error) {
	mac := BridgeMAC(m.bridge)
	if _, err := m.ip("link", "set", "dev", m.bridge, "address", mac); err != nil {
		return "", fmt.Errorf("pinning bridge %s's address: %w", m.bridge, err)
	}
	return mac, nil
}

// BridgeMAC is the fixed address PinBridgeAddress gives a bridge: 02 (locally
// administered, unicast) followed by five bytes of the SHA-256 of its name.
func BridgeMAC(bridge string) string {
	sum := sha256.Sum256([]byte(bridge))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", sum[0], sum[1], sum[2], sum[3], sum[4])
}

// Create builds the sandbox of replica id with address ip.
func (m *Manager) Create(id string, ip netip.Addr) (err error) {
	ns, host, peer := m.Namespace(id), m.hostVeth(id), m.peerVeth(id)
	defer func() {
		if err != nil {
			_ = m.Delete(id)
		}
	}()
	addr := fmt.Sprintf("%s/%d", ip, m.alloc.Prefix().Bits())
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns},
		{"link", "set", host, "master", m.bridge},
		{"link", "set", host, "up"},
		{"-n", ns, "link", "set", peer, "name", "eth0"},
		{"-n", ns, "addr", "add", addr, "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "route", "add", "default", "via", m.alloc.Host().String()},
	}
	for _, s := range steps {
		if _, err := m.ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// KillAll sends SIGKILL to every process still inside replica id's namespace
// (processes that left our process group, e.g. daemonised children).
func (m *Manager) KillAll(id string) {
	m.killNamespace(m.Namespace(id))
}

func (m *Manager) killNamespace(ns string) {
	out, err := m.ip("netns", "pids", ns)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Delete removes replica id's veth pair and namespace; missing pieces are fine.
func (m *Manager) Delete(id string) error {
	return m.deleteNamed(m.Namespace(id), m.hostVeth(id))
}

func (m *Manager) deleteNamed(ns, veth string) error {
	var errs []error
	if veth != "" && m.linkExists(veth) {
		if _, err := m.ip("link", "del", veth); err != nil && m.linkExists(veth) {
			errs = append(errs, err)
		}
	}
	if m.nsExists(ns) {
		m.killNamespace(ns)
		if _, err := m.ip("netns", "del", ns); err != nil && m.nsExists(ns) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) linkExists(name string) bool {
	_, err := m.ip("-o", "link", "show", "dev", name)
	return err == nil
}

func (m *Manager) nsExists(name string) bool {
	names, err := m.Namespaces()
	if err != nil {
		return true // be conservative: try to delete
	}
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// Namespaces lists network namespaces whose name starts with our prefix.
func (m *Manager) Namespaces() ([]string, error) {
	out, err := m.ip("netns", "list")
	if err != nil {
		return nil, err
	}
	return filterPrefix(parseNetnsList(out), m.prefix), nil
}

// Links lists interfaces whose name starts with our prefix.
func (m *Manager) Links() ([]string, error) {
	out, err := m.ip("-o", "link", "show")
	if err != nil {
		return nil, err
	}
	return filterPrefix(parseLinkList(out), m.prefix), nil
}

// Sweep deletes every namespace and interface carrying our prefix. It runs
// at start (leftovers of a crash) and after shutdown (belt and braces).
func (m *Manager) Sweep() (removed []string, err error) {
	var errs []error
	nss, err := m.Namespaces()
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		if err := m.deleteNamed(ns, ""); err != nil {
			errs = append(errs, err)
		} else {
			removed = append(removed, "netns "+ns)
		}
	}
	links, err := m.Links()
	if err != nil {
		return removed, errors.Join(append(errs, err)...)
	}
	for _, l := range links {
		if l == m.bridge {
			continue
		}
		if _, err := m.ip("link", "del", l); err != nil && m.linkExists(l) {
			errs = append(errs, err)
		} else {
			removed = append(removed, "link "+l)
		}
	}
	return removed, errors.Join(errs...)
}

// parseNetnsList reads `ip netns list` output ("name (id: 3)" or "name").
func parseNetnsList(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// parseLinkList reads `ip -o link show` output ("7: name@if6: <...> ...").
func parseLinkList(out string) []string {
	var names []string
	for _, line := range strings.Split(out, "\n") {
		parts := strings.SplitN(line, ": ", 3)
		if len(parts) < 2 {
			continue
		}
		name := parts[1]
		if i := strings.IndexByte(name, '@'); i >= 0 {
			name = name[:i]
		}
		names = append(names, strings.TrimSpace(name))
	}
	return names
}

func filterPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}
