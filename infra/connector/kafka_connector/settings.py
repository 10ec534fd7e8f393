"""The connector's configuration: one frozen object, read once from the environment.

Every variable has a default that suits the local platform except the credentials, which come
from files (the gateway's `basic-auth-user` and `basic-auth-password`, as OpenFaaS mounts them
under /var/openfaas/secrets). All problems are collected and reported together at start-up, so
a misconfigured deployment fails once with the whole list instead of one error per restart.

Example:
    >>> s = Settings.from_env({"KAFKA_BROKERS": "kafka:9092", "CONNECTOR_BASIC_AUTH": "false"})
    >>> s.topics, s.retry_delays_s
    (('impressions', 'clicks'), (0.1, 0.2, 0.4, 0.8, 1.6))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

# The specification's backoff: 5 retries after the first attempt.
DEFAULT_RETRY_DELAYS_MS = "100,200,400,800,1600"
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class SettingsError(ValueError):
    """The environment describes no valid connector; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid connector settings:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    brokers: str
    gateway_url: str
    basic_auth: tuple[str, str] | None
    topics: tuple[str, ...]
    group_id: str
    instance_id: str | None
    rediscover_interval_s: float
    batch_size: int
    poll_size: int
    batch_wait_s: float  # the shortest poll window, used at light load (window.py)
    batch_wait_max_s: float  # the longest, reached at heavy load
    retry_delays_s: tuple[float, ...]
    hold_statuses: frozenset[int]
    dlq_topic: str
    health_host: str
    health_port: int
    upstream_timeout_s: float
    max_in_flight: int
    content_type: str
    lag_interval_s: float
    session_timeout_ms: int
    connector_name: str
    shutdown_grace_s: float
    max_cycle_s: float
    log_level: str

    def __repr__(self) -> str:  # never print the password
        auth = "on" if self.basic_auth else "off"
        return (
            f"Settings(brokers={self.brokers!r}, gateway_url={self.gateway_url!r}, "
            f"basic_auth={auth}, topics={self.topics}, group_id={self.group_id!r}, "
            f"instance_id={self.instance_id!r}, batch_size={self.batch_size}, "
            f"poll_size={self.poll_size}, "
            f"batch_wait_s={self.batch_wait_s}..{self.batch_wait_max_s}, "
            f"retry_delays_s={self.retry_delays_s}, "
            f"hold_statuses={sorted(self.hold_statuses)}, "
            f"dlq_topic={self.dlq_topic!r}, health={self.health_host}:{self.health_port}, "
            f"rediscover_interval_s={self.rediscover_interval_s}, "
            f"upstream_timeout_s={self.upstream_timeout_s}, max_in_flight={self.max_in_flight})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate everything; raise SettingsError listing every problem."""
        problems: list[str] = []

        def get(name: str, default: str, parse: Callable[[str], T], rule: str) -> T:
            raw = env.get(name, default).strip()
            try:
                return parse(raw)
            except (ValueError, TypeError):
                problems.append(f"{name}={raw!r}: {rule}")
                return parse(default)

        brokers = env.get("KAFKA_BROKERS", "127.0.0.1:9092").strip()
        if not brokers or any(":" not in b for b in brokers.split(",")):
            problems.append(f"KAFKA_BROKERS={brokers!r}: expected host:port[,host:port...]")

        gateway_url = env.get("GATEWAY_URL", "http://127.0.0.1:8080").strip().rstrip("/")
        parts = urlsplit(gateway_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"GATEWAY_URL={gateway_url!r}: expected http(s)://host[:port]")

        basic_auth = None
        if get("CONNECTOR_BASIC_AUTH", "true", _boolean, "expected true or false"):
            secrets_dir = Path(env.get("CONNECTOR_SECRETS_DIR", "/var/openfaas/secrets"))
            basic_auth = _read_credentials(secrets_dir, problems)

        topics = tuple(_split(env.get("CONNECTOR_TOPICS", "impressions,clicks")))
        if not topics:
            problems.append("CONNECTOR_TOPICS: name at least one topic")
        for topic in topics:
            if not _TOPIC_NAME.match(topic):
                problems.append(f"CONNECTOR_TOPICS: {topic!r} is not a valid Kafka topic name")

        dlq_topic = env.get("CONNECTOR_DLQ_TOPIC", "events-dlq").strip()
        if not _TOPIC_NAME.match(dlq_topic):
            problems.append(f"CONNECTOR_DLQ_TOPIC={dlq_topic!r}: not a valid Kafka topic name")
        elif dlq_topic in topics:
            problems.append(f"CONNECTOR_DLQ_TOPIC={dlq_topic!r}: must not be a consumed topic")

        group_id = env.get("CONNECTOR_GROUP_ID", "ads-kafka-connector").strip()
        if not group_id:
            problems.append("CONNECTOR_GROUP_ID: must not be empty")

        delays = get(
            "CONNECTOR_RETRY_DELAYS_MS",
            DEFAULT_RETRY_DELAYS_MS,
            _delays,
            "expected comma-separated milliseconds >= 0, e.g. 100,200,400 (empty: no retries)",
        )
        wait_ms = get(
            "CONNECTOR_BATCH_WAIT_MS", "50", _within(int, 1, 60_000), "expected 1..60000 ms"
        )
        # Unset, the longest window is 250 ms, or the shortest if that is longer.
        wait_max_ms = get(
            "CONNECTOR_BATCH_WAIT_MAX_MS",
            str(max(wait_ms, 250)),
            _within(int, wait_ms, 60_000),
            f"expected {wait_ms}..60000 ms (at least CONNECTOR_BATCH_WAIT_MS)",
        )
        settings = cls(
            brokers=brokers,
            gateway_url=gateway_url,
            basic_auth=basic_auth,
            topics=topics,
            group_id=group_id,
            instance_id=env.get("CONNECTOR_INSTANCE_ID", "").strip() or None,
            rediscover_interval_s=get(
                "CONNECTOR_REDISCOVER_INTERVAL_S", "30", _positive(float), "expected seconds > 0"
            ),
            batch_size=get(
                "CONNECTOR_BATCH_SIZE", "2000", _within(int, 1, 100_000), "expected 1..100000"
            ),
            poll_size=get(
                "CONNECTOR_POLL_SIZE", "20000", _within(int, 1, 100_000), "expected 1..100000"
            ),
            batch_wait_s=wait_ms / 1000,
            batch_wait_max_s=wait_max_ms / 1000,
            retry_delays_s=tuple(d / 1000 for d in delays),
            hold_statuses=get(
                "CONNECTOR_HOLD_STATUSES",
                "429,502,503,504",
                _statuses,
                "expected comma-separated HTTP statuses 400..599, e.g. 429,502,503,504",
            ),
            dlq_topic=dlq_topic,
            health_host=env.get("CONNECTOR_HEALTH_HOST", "127.0.0.1").strip(),
            health_port=get("CONNECTOR_HEALTH_PORT", "8095", _within(int, 0, 65535), "a port"),
            upstream_timeout_s=get(
                "CONNECTOR_UPSTREAM_TIMEOUT_S", "30", _positive(float), "expected seconds > 0"
            ),
            max_in_flight=get(
                "CONNECTOR_MAX_IN_FLIGHT", "16", _within(int, 1, 512), "expected 1..512"
            ),
            content_type=env.get("CONNECTOR_CONTENT_TYPE", "application/json").strip(),
            lag_interval_s=get(
                "CONNECTOR_LAG_INTERVAL_S", "5", _positive(float), "expected seconds > 0"
            ),
            session_timeout_ms=get(
                "CONNECTOR_SESSION_TIMEOUT_MS",
                "10000",
                # The broker's default group.min/max.session.timeout.ms.
                _within(int, 6000, 300_000),
                "expected 6000..300000",
            ),
            connector_name=env.get("CONNECTOR_NAME", "ads-kafka-connector").strip(),
            shutdown_grace_s=get(
                "CONNECTOR_SHUTDOWN_GRACE_S", "5", _within(float, 0, 300), "expected 0..300 s"
            ),
            max_cycle_s=get(
                "CONNECTOR_MAX_CYCLE_S", "60", _within(float, 0.1, 3600), "expected 0.1..3600 s"
            ),
            log_level=env.get("CONNECTOR_LOG_LEVEL", "INFO").strip().upper(),
        )
        if settings.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append(f"CONNECTOR_LOG_LEVEL={settings.log_level!r}: DEBUG|INFO|WARNING|ERROR")
        if problems:
            raise SettingsError(problems)
        return settings


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(raw)


def _statuses(raw: str) -> frozenset[int]:
    values = frozenset(int(part) for part in _split(raw))
    if any(not 400 <= v <= 599 for v in values):
        raise ValueError(raw)
    return values


def _delays(raw: str) -> list[int]:
    values = [int(part) for part in _split(raw)]
    if any(v < 0 or v > 600_000 for v in values):
        raise ValueError(raw)
    return values


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = kind(raw)
        if value <= 0:
            raise ValueError(raw)
        return value

    return parse


def _within(kind: Callable[[str], T], low: float, high: float) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        value = kind(raw)
        if not low <= value <= high:  # type: ignore[operator]
            raise ValueError(raw)
        return value

    return parse


def _read_credentials(secrets_dir: Path, problems: list[str]) -> tuple[str, str] | None:
    values = []
    for name in ("basic-auth-user", "basic-auth-password"):
        path = secrets_dir / name
        try:
            value = path.read_text().strip()
        except OSError as exc:
            problems.append(
                f"CONNECTOR_SECRETS_DIR: cannot read {path} ({exc.strerror or exc}); "
                "set CONNECTOR_BASIC_AUTH=false if the gateway has no basic auth"
            )
            continue
        if not value:
            problems.append(f"CONNECTOR_SECRETS_DIR: {path} is empty")
        values.append(value)
    return (values[0], values[1]) if len(values) == 2 and all(values) else None
