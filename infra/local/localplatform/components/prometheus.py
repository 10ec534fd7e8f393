"""Prometheus (Debian's 2.42): scrapes the gateway, the provider, every function replica, the
connector and the autoscaler (which also queries it).

Its config is rendered from infra/prometheus/prometheus.yml on every start, so ports always
match the profile, and checked with `promtool` before the server sees it: a bad config then
fails `make up` with promtool's message instead of a server that exits at once. It listens on
loopback only; function replicas never query it, Prometheus goes to them.
"""

from __future__ import annotations

import string
import subprocess
from pathlib import Path

import requests

from ..component import Command, Component, ComponentError
from ..profile import REPO_ROOT

TEMPLATE = REPO_ROOT / "infra" / "prometheus" / "prometheus.yml"
RULES_DIR = REPO_ROOT / "infra" / "prometheus" / "rules"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"


class Prometheus(Component):
    name = "prometheus"
    start_timeout_s = 30.0

    @property
    def area(self) -> Path:
        return self.profile.data_dir / self.name

    @property
    def config_path(self) -> Path:
        return self.area / "prometheus.yml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.profile.ports.prometheus}"

    def prepare(self) -> None:
        self.area.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render())
        done = subprocess.run(
            [PROMTOOL, "check", "config", str(self.config_path)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise ComponentError(
                f"prometheus: {self.config_path} (from {TEMPLATE}) is invalid:\n"
                f"{done.stdout}{done.stderr}"
            )

    def render(self) -> str:
        """The template with the profile's values; a placeholder without a value fails here."""
        p = self.profile.ports
        values = {
            "profile": self.profile.name,
            "rules_dir": str(RULES_DIR),
            "prometheus_port": p.prometheus,
            "gateway_metrics_port": p.gateway_metrics,
            "provider_ops_port": p.provider_ops,
            "connector_health_port": p.connector_health,
            "autoscaler_port": p.autoscaler,
        }
        try:
            return string.Template(TEMPLATE.read_text()).substitute(values)
        except (KeyError, ValueError) as exc:
            raise ComponentError(f"prometheus: cannot render {TEMPLATE}: {exc!r}") from exc

    def command(self) -> Command:
        return Command(
            [
                PROMETHEUS,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.area / 'tsdb'}",
                "--storage.tsdb.retention.time=15d",
                f"--web.listen-address=127.0.0.1:{self.profile.ports.prometheus}",
                "--web.enable-lifecycle",  # POST /-/reload picks up a re-rendered config
            ],
            cwd=self.area,
        )

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def address(self) -> str:
        return self.url
