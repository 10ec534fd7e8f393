"""The real OpenFaaS gateway (CE), unmodified, in front of our provider.

Its ports are hard-coded: 8080 for the API and invocations, 8082 for /metrics. It asks the
provider for everything (`functions_provider_url`, trailing slash required) and protects
/system/* and /ui with basic auth from `secret_mount_path`.
"""

from __future__ import annotations

import requests

from ..component import Command, Component
from ..secrets import basic_auth_dir
from ..toolchain import GATEWAY, bin_path


class Gateway(Component):
    name = "gateway"

    def command(self) -> Command:
        p = self.profile
        env = {
            "functions_provider_url": f"http://127.0.0.1:{p.ports.provider}/",
            "basic_auth": "true",
            "secret_mount_path": f"{basic_auth_dir(p)}/",
            "faas_prometheus_host": "127.0.0.1",
            "faas_prometheus_port": str(p.ports.prometheus),
            # As the OpenFaaS chart sets it: the gateway then labels its invocation metrics
            # `name.openfaas-fn`, which is what its own Prometheus lookup for `faas-cli list`
            # and `describe` matches (without it every function shows 0 invocations).
            "function_namespace": "openfaas-fn",
            "read_timeout": "65s",
            "write_timeout": "65s",
            "upstream_timeout": "60s",
            "max_idle_conns": "1024",
            "max_idle_conns_per_host": "1024",
            # A function at zero replicas (com.openfaas.scale.zero) is scaled to its minimum by
            # the gateway on its next request, which waits until a replica is ready.
            "scale_from_zero": "true" if p.autoscaling.scale_from_zero else "false",
        }
        return Command(argv=[str(bin_path(GATEWAY.name))], env=env, cwd=p.state_dir)

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.profile.gateway_url}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def address(self) -> str:
        return self.profile.gateway_url
