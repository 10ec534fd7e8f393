"""Small helpers every kind of test uses: polling with a deadline, a free local port, a real HTTP
server on loopback for a stand-in the test controls, and a stand-in for a consumed Kafka record."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from confluent_kafka import TIMESTAMP_CREATE_TIME

from shared_layer.kernel.storage.outbox import outbox_fields
from shared_layer.pipeline.domain.events import AdEvent

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout_s: float, interval_s: float = 0.1) -> T:
    """Call `predicate` until it returns something truthy or `timeout_s` passes; returns the
    last value (so a failing assertion can show it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    return predicate()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class QuietHandler(BaseHTTPRequestHandler):
    """A keep-alive request handler that answers with `send` and writes no access log."""

    protocol_version = "HTTP/1.1"

    def send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class LoopbackServer:
    """A real threaded HTTP server on 127.0.0.1 (a free port) serving `handler` from a daemon
    thread until `close`; `base_url` is ``http://127.0.0.1:<port>``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def click_on(impression: AdEvent, at: datetime | None = None) -> AdEvent:
    """The click event on `impression`'s ad (now, or `at`)."""
    return AdEvent.click(
        impression_id=impression.impression_id,
        campaign_id=impression.campaign_id,
        ad_id=impression.ad_id,
        user_id=impression.user_id,
        placement_id=impression.placement_id,
        at=at,
    )


@dataclass
class FakeKafkaRecord:
    """The part of confluent_kafka.Message the connector's payload builders read."""

    _value: bytes | None
    _key: bytes | None = None
    _offset: int = 7
    _partition: int = 3
    _topic: str = "impressions"
    _timestamp: tuple[int, int] = (TIMESTAMP_CREATE_TIME, 1_700_000_000_123)
    _headers: list[tuple[str, bytes | None]] | None = field(default=None)

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def headers(self) -> list[tuple[str, bytes | None]] | None:
        return self._headers


class CountingReads:
    """A real Redis client, with a count of the XREADGROUP calls made through it (an outbox
    relay's reads); everything else goes straight to the client."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.reads = 0

    def xreadgroup(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return self._client.xreadgroup(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def event_for(topic: str, n: int = 0) -> tuple[str, list[bytes]]:
    """An impression event with its outbox fields (`outbox_fields`), sent to `topic` instead of
    `impressions`: its event id, and the fields a bid script would XADD."""
    event = AdEvent.impression(
        impression_id=str(uuid.uuid4()),
        campaign_id=str(uuid.uuid4()),
        ad_id=str(uuid.uuid4()),
        user_id=f"user-{n}",
        placement_id="placement-1",
        bid_cpm_micros=2_500_000,
        price_micros=2_500,
    )
    fields = outbox_fields(event)
    fields[1] = topic.encode()
    return event.event_id, fields
