"""Our OpenFaaS provider (infra/provider): runs each replica, the real of-watchdog in front of
the function's process, in a network namespace."""

from __future__ import annotations

import requests

from ..component import Command, Component
from ..secrets import basic_auth_dir
from ..toolchain import bin_path, watchdog


class Provider(Component):
    name = "provider"

    def command(self) -> Command:
        p = self.profile
        argv = [
            str(bin_path("ads-provider")),
            f"--listen=127.0.0.1:{p.ports.provider}",
            f"--ops-listen=127.0.0.1:{p.ports.provider_ops}",
            f"--invoke-listen={p.bridge_ip}:{p.ports.provider_invoke}",
            f"--state-dir={p.state_dir / 'provider'}",
            f"--images-dir={p.images_dir}",
            f"--auth-dir={basic_auth_dir(p)}",
            f"--bridge={p.bridge}",
            f"--bridge-cidr={p.bridge_cidr}",
            f"--netns-prefix={p.netns_prefix}",
            f"--watchdog={watchdog()}",
            f"--max-replicas={p.max_replicas}",
        ]
        return Command(argv=argv, cwd=p.state_dir)

    def stop(self, timeout_s: float = 75.0) -> bool:
        # On SIGTERM every replica's of-watchdog keeps serving for healthcheck_interval (1 s
        # unless the function sets it), then finishes its accepted requests within its
        # write_timeout (30 s by default): give it that long and more.
        return super().stop(timeout_s=timeout_s)

    def healthy(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.profile.ports.provider_ops}/healthz"
            return requests.get(url, timeout=1).ok
        except requests.RequestException:
            return False

    def address(self) -> str:
        ports = self.profile.ports
        return f"http://127.0.0.1:{ports.provider} (ops :{ports.provider_ops})"
