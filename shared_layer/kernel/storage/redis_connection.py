"""How every function connects to Redis, and the one place that says which calls may be retried.

A budget charge and a click record are not idempotent: a retried EVALSHA whose first reply was
lost would charge or count twice, so those clients get no automatic retry (``retries=0``).
Reads and watermark-guarded counter scripts are harmless to repeat and may retry.

One server (the default) or a Redis Cluster, chosen by ``REDIS_URL`` alone, so that every
function of one deployment agrees on it:

    redis://host:6379/0                               one server (redis-py's Redis)
    redis+cluster://host1:7001,host2:7002?shards=16    a Redis Cluster (redis-py's RedisCluster);
                                                      the nodes are where discovery starts

``shards`` (cluster default 16, one server 1) is how many hash tags the campaigns are spread
over (`kernel.storage.shards`); it is part of the URL because every function must use the same
number. On a cluster, `retries` also bounds the cluster client's own retries (redis-py re-sends a
command after a connection error or CLUSTERDOWN as it refreshes the topology); MOVED and ASK
redirects are followed either way, since the command did not run where it was refused.

Example::

    ledger_client = connect(url, timeout_s=0.25, retries=0)            # charges: never retried
    counters = connect(url, timeout_s=5, retries=3, backoff=True)       # watermark-guarded
    layout = key_layout(url)                                            # Shards(count=16)
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import redis
from redis import exceptions as redis_errors
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from shared_layer.kernel.storage.shards import Shards

__all__ = [
    "CLUSTER_SCHEMES",
    "DEFAULT_CLUSTER_SHARDS",
    "REDIS_ERRORS",
    "UNREACHABLE_ERRORS",
    "connect",
    "is_cluster",
    "key_layout",
    "read_many",
]

CLUSTER_SCHEMES: Final = ("redis+cluster", "rediss+cluster")
DEFAULT_CLUSTER_SHARDS: Final = 16

REDIS_ERRORS: Final = (redis_errors.RedisError, redis_errors.RedisClusterException)
"""What redis-py raises for a command that failed. On a cluster that includes
RedisClusterException (SlotNotCoveredError while a failover is under way, for one), which is
not a RedisError: catch this tuple, not RedisError alone."""

UNREACHABLE_ERRORS: Final = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
    redis_errors.RedisClusterException,
)
"""The failures that mean "Redis cannot answer now" (503), not "Redis refused" (a bug)."""


def is_cluster(url: str) -> bool:
    """Whether `url` names a Redis Cluster (``redis+cluster://``)."""
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def key_layout(url: str) -> Shards:
    """The shards of `url`: ``?shards=N`` if given, else 16 on a cluster and 1 on one server."""
    values = parse_qs(urlsplit(url).query).get("shards")
    if values:
        count = int(values[-1])
        if count < 1:
            raise ValueError(f"REDIS_URL shards={count}: expected at least 1")
        return Shards(count)
    return Shards(DEFAULT_CLUSTER_SHARDS if is_cluster(url) else 1)


def connect(
    url: str,
    *,
    timeout_s: float = 5.0,
    connect_timeout_s: float | None = None,
    retries: int | None = None,
    backoff: bool = False,
    name: str | None = None,
) -> Any:
    """A client for `url`; `retries` None keeps redis-py's default, 0 disables retries.

    Returns a ``redis.Redis``, or a ``redis.cluster.RedisCluster`` for a cluster URL: both have
    the commands, scripts and pipelines the stores use.
    """
    options: dict[str, Any] = {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s if connect_timeout_s is None else connect_timeout_s,
    }
    if retries is not None:
        strategy = ExponentialBackoff(cap=0.5, base=0.05) if backoff else NoBackoff()
        options["retry"] = Retry(strategy, retries)
    if name is not None:
        options["client_name"] = name
    if is_cluster(url):
        return _cluster(url, options)
    return redis.Redis.from_url(_without_shards(url), **options)


def read_many(client: Any, keys: list[str]) -> list[Any]:
    """MGET where the keys may lie in different hash slots (not atomic across slots).

    One round trip on one server; on a cluster, redis-py's ``mget_nonatomic`` sends one MGET
    per slot (a plain MGET across slots is refused there). For reads that need no snapshot of
    several keys, such as cached report days.
    """
    many = getattr(client, "mget_nonatomic", None)
    return list(many(keys)) if many is not None else list(client.mget(keys))


def _cluster(url: str, options: dict[str, Any]) -> RedisCluster:
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    nodes = [_node(host) for host in hosts.split(",") if host]
    if not nodes:
        raise ValueError("a redis+cluster:// URL needs at least one host:port")
    if credentials:
        user, _, password = credentials.partition(":")
        options |= {"username": user or None, "password": password or None}
    if parts.scheme.startswith("rediss"):
        options["ssl"] = True
    # redis-py gives the nodes' own connections no retries: `retry` alone decides.
    cluster = RedisCluster(startup_nodes=nodes, **options)
    return cluster


def _node(host_port: str) -> ClusterNode:
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{host_port!r} in a redis+cluster:// URL: expected host:port")
    return ClusterNode(host, int(port))


def _without_shards(url: str) -> str:
    parts = urlsplit(url)
    if "shards" not in parse_qs(parts.query):
        return url
    query = "&".join(p for p in parts.query.split("&") if not p.startswith("shards="))
    return parts._replace(query=query).geturl()
