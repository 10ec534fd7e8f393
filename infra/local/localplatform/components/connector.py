"""Our Kafka connector (infra/connector): Kafka topics in, function invocations through the gateway.

It runs under its supervisor (`python -m kafka_connector.supervise`), which restarts the
connector process whenever it dies; the recorded pid is the supervisor's, so `make down` stops
both (the process group). Its address is the health port: /healthz (200 when it polls Kafka and
reaches the gateway) and /metrics, which Prometheus scrapes.
"""

from __future__ import annotations

import sys

import requests

from ..component import Command, Component
from ..profile import REPO_ROOT
from ..secrets import basic_auth_dir

CONNECTOR_SOURCE = REPO_ROOT / "infra" / "connector"


class Connector(Component):
    name = "connector"
    start_timeout_s = 60.0

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.profile.ports.connector_health}"

    def command(self) -> Command:
        p = self.profile
        env = {
            "PYTHONPATH": str(CONNECTOR_SOURCE),
            "PYTHONUNBUFFERED": "1",
            "KAFKA_BROKERS": f"127.0.0.1:{p.ports.kafka}",
            "GATEWAY_URL": p.gateway_url,
            "CONNECTOR_SECRETS_DIR": str(basic_auth_dir(p)),
            "CONNECTOR_TOPICS": "impressions,clicks",
            "CONNECTOR_DLQ_TOPIC": "events-dlq",
            "CONNECTOR_GROUP_ID": "ads-kafka-connector",
            # Functions deployed after the connector started are found within seconds.
            "CONNECTOR_REDISCOVER_INTERVAL_S": "5",
            # Static group membership: a restarted process gets its partitions back at once.
            "CONNECTOR_INSTANCE_ID": f"{p.name}-connector-0",
            "CONNECTOR_HEALTH_HOST": "127.0.0.1",
            "CONNECTOR_HEALTH_PORT": str(p.ports.connector_health),
        }
        return Command(
            argv=[sys.executable, "-m", "kafka_connector.supervise"],
            env=env,
            cwd=p.state_dir,
        )

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.health_url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def address(self) -> str:
        return self.health_url
