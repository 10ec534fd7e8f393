"""Which functions subscribe to which topic, as the gateway lists them.

The OpenFaaS contract: a function subscribes with the annotation `topic: a,b` (comma-separated,
exact topic names). Ours adds one opt-in annotation, `com.openfaas.kafka.batch: "true"`: such a
function receives a JSON array of records per invocation instead of one record per call.

`parse_subscriptions` is pure (unit-tested); `Discovery` fetches `GET /system/functions` with
the gateway's basic auth every `rediscover_interval_s` in a background thread and publishes an
immutable `Subscriptions` snapshot that the consumer loop reads at the start of each cycle.

Example:
    >>> subs = parse_subscriptions(
    ...     [{"name": "agg", "annotations": {"topic": "impressions, clicks",
    ...                                      "com.openfaas.kafka.batch": "true"}}],
    ...     consumed=("impressions", "clicks"),
    ... )
    >>> subs.for_topic("clicks")
    (Subscriber(name='agg', batch=True),)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import requests

from . import metrics

TOPIC_ANNOTATION = "topic"
BATCH_ANNOTATION = "com.openfaas.kafka.batch"
_TRUE = {"true", "1", "yes"}

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Subscriber:
    name: str
    batch: bool = False


@dataclass(frozen=True)
class Subscriptions:
    """topic -> subscribers (sorted by name), only for the topics this connector consumes."""

    by_topic: dict[str, tuple[Subscriber, ...]] = field(default_factory=dict)

    def for_topic(self, topic: str) -> tuple[Subscriber, ...]:
        return self.by_topic.get(topic, ())


def parse_subscriptions(functions: Iterable[dict], consumed: Iterable[str]) -> Subscriptions:
    """Subscriptions from a /system/functions listing (FunctionStatus objects).

    A function subscribes to each consumed topic named in its `topic` annotation; names are
    matched exactly after trimming spaces, as in connector-sdk. Entries without a name, or
    with annotations that are not a mapping, are ignored.
    """
    wanted = set(consumed)
    found: dict[str, set[Subscriber]] = {}
    for fn in functions:
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            continue
        annotations = fn.get("annotations") or {}
        if not isinstance(annotations, dict):
            continue
        topics = str(annotations.get(TOPIC_ANNOTATION, ""))
        batch = str(annotations.get(BATCH_ANNOTATION, "")).strip().lower() in _TRUE
        for topic in (t.strip() for t in topics.split(",")):
            if topic in wanted:
                found.setdefault(topic, set()).add(Subscriber(fn["name"], batch))
    return Subscriptions({topic: tuple(sorted(subs)) for topic, subs in found.items()})


class DiscoveryError(RuntimeError):
    """The gateway could not be asked or gave an answer that is not a function list."""


class Discovery:
    """Keeps a current Subscriptions snapshot, refreshed from the gateway in the background."""

    def __init__(
        self,
        gateway_url: str,
        auth: tuple[str, str] | None,
        topics: tuple[str, ...],
        interval_s: float,
        timeout_s: float = 5.0,
    ) -> None:
        self._url = f"{gateway_url}/system/functions"
        self._auth = auth
        self._topics = topics
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._session = requests.Session()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current = Subscriptions()
        self.last_success: float | None = None  # time.monotonic() of the last good answer

    def refresh(self) -> Subscriptions:
        """Ask the gateway once; keep the previous snapshot if that fails."""
        try:
            r = self._session.get(self._url, auth=self._auth, timeout=self._timeout_s)
            r.raise_for_status()
            listing = r.json()
            if not isinstance(listing, list):
                raise DiscoveryError(f"{self._url} answered {type(listing).__name__}, not a list")
        except (requests.RequestException, ValueError, DiscoveryError) as exc:
            metrics.DISCOVERY_FAILURES.inc()
            log.warning("discovery: cannot list functions at %s: %s", self._url, exc)
            return self.current
        subs = parse_subscriptions(listing, self._topics)
        if subs != self.current:
            log.info(
                "discovery: subscriptions %s",
                {
                    t: [s.name + (" (batch)" if s.batch else "") for s in v]
                    for t, v in subs.by_topic.items()
                }
                or "none",
            )
        self.current = subs
        self.last_success = time.monotonic()
        for topic in self._topics:
            metrics.SUBSCRIBERS.labels(topic).set(len(subs.for_topic(topic)))
        return subs

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="discovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.refresh()
