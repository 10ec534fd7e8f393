"""Small helpers every kind of test uses: polling with a deadline, a free local port, and a
stand-in for a consumed Kafka record."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from confluent_kafka import TIMESTAMP_CREATE_TIME

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
