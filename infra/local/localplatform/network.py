"""The bridge replicas hang off, the test platform's own namespace, and sweeping up after both.

Replicas live in network namespaces named `<prefix><id>` with veths on the profile's bridge;
the provider creates and removes those. What is left here: the bridge itself (the host's
address on it is where replicas reach PostgreSQL, Redis, Kafka and the gateway), the test
profile's host namespace, and a sweep that removes anything of ours a crash left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from .profile import Profile


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def ensure_bridge(profile: Profile) -> None:
    """Create the bridge with the host address, idempotently."""
    if _ip("link", "show", profile.bridge, check=False).returncode != 0:
        _ip("link", "add", profile.bridge, "type", "bridge")
    addr = f"{profile.bridge_ip}/{profile.bridge_prefixlen}"
    shown = _ip("-o", "-4", "addr", "show", "dev", profile.bridge).stdout
    if addr not in shown:
        _ip("addr", "add", addr, "dev", profile.bridge)
    _ip("link", "set", profile.bridge, "up")


def remove_bridge(profile: Profile) -> None:
    _ip("link", "del", profile.bridge, check=False)


def our_namespaces(profile: Profile) -> list[str]:
    """Replica namespaces of this profile (never the test host namespace itself)."""
    out = _ip("-j", "netns", "list", check=False).stdout.strip()
    names = [entry["name"] for entry in json.loads(out)] if out else []
    return [n for n in names if n.startswith(profile.netns_prefix) and n != profile.host_netns]


def our_links(profile: Profile) -> list[str]:
    out = _ip("-j", "link", "show", check=False).stdout.strip()
    names = [link["ifname"] for link in json.loads(out)] if out else []
    return [n for n in names if n.startswith(profile.netns_prefix) or n == profile.bridge]


def sweep(profile: Profile) -> list[str]:
    """Delete leftover replica namespaces and veths of this profile; returns what went."""
    removed = []
    for ns in our_namespaces(profile):
        _ip("netns", "del", ns, check=False)
        removed.append(f"netns {ns}")
    for link in our_links(profile):
        if link != profile.bridge:
            _ip("link", "del", link, check=False)
            removed.append(f"link {link}")
    return removed


# The test profile's host namespace. `nsenter --net` switches only the network namespace:
# `ip netns exec` would also give a private mount namespace, and namespaces the provider then
# creates with `ip netns add` would be invisible (and unremovable) from outside it.


def host_netns_path(profile: Profile) -> Path | None:
    return Path("/run/netns") / profile.host_netns if profile.host_netns else None


def host_netns_exists(profile: Profile) -> bool:
    path = host_netns_path(profile)
    return path is not None and path.exists()


def inside_host_netns(profile: Profile) -> bool:
    path = host_netns_path(profile)
    if path is None:
        return True
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def ensure_host_netns(profile: Profile) -> None:
    if profile.host_netns and _ip("netns", "pids", profile.host_netns, check=False).returncode:
        _ip("netns", "add", profile.host_netns)
    if profile.host_netns:
        _ip("-n", profile.host_netns, "link", "set", "lo", "up")


def remove_host_netns(profile: Profile) -> None:
    if profile.host_netns:
        _ip("netns", "del", profile.host_netns, check=False)


def in_host_netns(profile: Profile, argv: list[str]) -> list[str]:
    """argv run inside the profile's host namespace (unchanged for the dev profile)."""
    path = host_netns_path(profile)
    if path is None or inside_host_netns(profile):
        return argv
    return ["nsenter", f"--net={path}", "--", *argv]
