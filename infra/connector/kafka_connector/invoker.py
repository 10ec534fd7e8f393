"""Invoking a function through the gateway, with the specification's retries.

One pooled keep-alive HTTP client (urllib3) serves every worker thread. An attempt succeeds on
a 2xx answer; anything else (another status, a timeout, a connection error) is a failure and
is retried after the next delay of the schedule (default 100, 200, 400, 800, 1600 ms: five
retries, six attempts). When the schedule is exhausted the caller dead-letters the records if
the function refused them, or keeps them for its next cycle if the function was unavailable
(delivery.DeliveryLoop: a timeout, no connection, or a status of CONNECTOR_HOLD_STATUSES).
A stop request (SIGTERM) interrupts the waits between attempts: the delivery is abandoned and
its offsets are not committed.

Example:
    >>> retry_schedule((0.1, 0.2, 0.4, 0.8, 1.6))
    [0.0, 0.1, 0.2, 0.4, 0.8, 1.6]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import urllib3

from . import metrics


@dataclass(frozen=True)
class Attempt:
    """One HTTP call: `status_class` is `2xx`..`5xx`, `timeout` or `error`."""

    ok: bool
    status: int | None
    status_class: str
    error: str = ""


@dataclass(frozen=True)
class Outcome:
    """A delivery: acknowledged (`ok`), given up after the last retry, or abandoned on stop."""

    ok: bool
    attempts: int
    last: Attempt
    abandoned: bool = False


def retry_schedule(delays_s: tuple[float, ...]) -> list[float]:
    """The wait before each attempt: none before the first, then each retry delay."""
    return [0.0, *delays_s]


class Invoker:
    def __init__(
        self,
        gateway_url: str,
        timeout_s: float,
        retry_delays_s: tuple[float, ...],
        pool_size: int,
        stop: threading.Event,
        on_progress: Callable[[], None] = lambda: None,
    ) -> None:
        self._pool = urllib3.connection_from_url(
            gateway_url,
            maxsize=pool_size,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=min(timeout_s, 5.0), read=timeout_s),
            headers={"Connection": "keep-alive"},
        )
        self._base_path = urllib3.util.parse_url(gateway_url).path or ""
        self._timeout_s = timeout_s
        self._schedule = retry_schedule(retry_delays_s)
        self._stop = stop
        self._on_progress = on_progress

    def call(self, function: str, body: bytes, headers: dict[str, str]) -> Attempt:
        """POST <gateway>/function/<function> once; never raises for an HTTP failure."""
        path = f"{self._base_path}/function/{quote(function, safe='')}"
        started = time.perf_counter()
        try:
            r = self._pool.urlopen(
                "POST", path, body=body, headers=headers, redirect=False, retries=False
            )
            status, data = r.status, r.data
        except urllib3.exceptions.NewConnectionError as exc:  # a ConnectTimeoutError subclass
            attempt = Attempt(False, None, "error", f"connection error: {exc}")
        except urllib3.exceptions.TimeoutError:
            attempt = Attempt(False, None, "timeout", f"no answer within {self._timeout_s:g}s")
        except urllib3.exceptions.HTTPError as exc:
            attempt = Attempt(False, None, "error", f"connection error: {exc}")
        else:
            cls = f"{status // 100}xx"
            if 200 <= status < 300:
                attempt = Attempt(True, status, cls)
            else:
                text = data[:300].decode("utf-8", "replace").strip()
                attempt = Attempt(False, status, cls, f"HTTP {status}: {text}")
        metrics.LATENCY.labels(function).observe(time.perf_counter() - started)
        metrics.INVOKED.labels(function, attempt.status_class).inc()
        if not attempt.ok:
            metrics.FAILURES.labels(function, attempt.status_class).inc()
        self._on_progress()
        return attempt

    def deliver(self, function: str, body: bytes, headers: dict[str, str]) -> Outcome:
        """Call until a 2xx answer or the schedule is exhausted (or a stop is requested)."""
        attempt = Attempt(False, None, "error", "not attempted")
        for number, delay in enumerate(self._schedule, start=1):
            if number > 1:
                if self._stop.wait(delay):
                    return Outcome(False, number - 1, attempt, abandoned=True)
                metrics.RETRIES.labels(function).inc()
            elif self._stop.is_set():
                return Outcome(False, 0, attempt, abandoned=True)
            attempt = self.call(function, body, headers)
            if attempt.ok:
                return Outcome(True, number, attempt)
        return Outcome(False, len(self._schedule), attempt)

    def close(self) -> None:
        self._pool.close()
