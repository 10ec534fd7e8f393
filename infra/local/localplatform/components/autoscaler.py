"""Our autoscaler (infra/autoscaler): com.openfaas.scale.* labels, load from Prometheus, scaling
through the gateway (to zero through the provider, which the CE gateway refuses).

Its port serves /healthz, /metrics (decisions, desired replicas; Prometheus scrapes it) and
/status (each managed function's load and last decision; `make status` reads it).
"""

from __future__ import annotations

import requests

from ..component import Command, Component
from ..secrets import basic_auth_dir
from ..toolchain import bin_path


class Autoscaler(Component):
    name = "autoscaler"
    start_timeout_s = 15.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.profile.ports.autoscaler}"

    def command(self) -> Command:
        p = self.profile
        scaling = p.autoscaling
        argv = [
            str(bin_path("ads-autoscaler")),
            f"--listen=127.0.0.1:{p.ports.autoscaler}",
            f"--gateway={p.gateway_url}",
            f"--provider=http://127.0.0.1:{p.ports.provider}",
            f"--prometheus=http://127.0.0.1:{p.ports.prometheus}",
            f"--auth-dir={basic_auth_dir(p)}",
            f"--scale-down-window={scaling.scale_down_window_s}s",
            f"--max-replicas={p.max_replicas}",
            f"--only-prefix={scaling.only_prefix}",
        ]
        return Command(argv=argv, cwd=p.state_dir)

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def status(self) -> dict:
        """Each managed function's state and last decision; {} when it does not answer."""
        try:
            return requests.get(f"{self.url}/status", timeout=2).json().get("functions") or {}
        except (requests.RequestException, ValueError):
            return {}

    def address(self) -> str:
        return self.url
