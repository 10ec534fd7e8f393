"""Which addresses a backing service binds: loopback always, the bridge address when it exists.

Function replicas live in network namespaces on the profile's bridge and reach the backing
services at `profile.bridge_ip`. The bridge is created by the platform (network.py), not by
these components, and is absent in some runs (integration tests of one service alone);
binding an address no interface has would make the service fail to start, so it is bound only
when present. A bridge created after a service started needs a restart of that service.
"""

from __future__ import annotations

import subprocess

from ..profile import Profile


def local_ipv4_addresses() -> set[str]:
    """IPv4 addresses of this network namespace's interfaces, from `ip -o -4 addr show`."""
    out = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], check=True, capture_output=True, text=True
    ).stdout
    # Each line: "<idx>: <ifname>    inet <addr>/<prefix> ..."
    return {
        fields[fields.index("inet") + 1].split("/")[0]
        for fields in (line.split() for line in out.splitlines())
        if "inet" in fields
    }


def bridge_ip_if_present(profile: Profile) -> str | None:
    """The profile's bridge address if an interface here has it, else None."""
    ip = profile.bridge_ip
    return ip if ip in local_ipv4_addresses() else None


def bind_addresses(profile: Profile) -> list[str]:
    """Loopback, plus the bridge address when it exists: what every backing service binds."""
    bridge = bridge_ip_if_present(profile)
    return ["127.0.0.1"] + ([bridge] if bridge else [])
