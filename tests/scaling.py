"""Load steps and replica watching for the autoscaling test and benchmark.

`LoadLoop` keeps a fixed number of callers busy against one function through the gateway, on
loopback, and counts every response by status, so a test can prove that no request failed
while replicas came and went. It is bounded twice: by the number of callers and by a deadline.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import requests


class LoadLoop:
    """`callers` threads each calling `url` back to back until stopped or `max_s` passes."""

    def __init__(self, url: str, callers: int, max_s: float) -> None:
        self.url, self.callers, self.max_s = url, callers, max_s
        self.codes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> LoadLoop:
        deadline = time.monotonic() + self.max_s
        for _ in range(self.callers):
            t = threading.Thread(target=self._call, args=(deadline,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> Counter[str]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.max_s)
        return self.codes

    def _call(self, deadline: float) -> None:
        with requests.Session() as session:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    code = str(session.get(self.url, timeout=30).status_code)
                except requests.RequestException as exc:
                    code = type(exc).__name__
                with self._lock:
                    self.codes[code] += 1


def wait_replicas(status, name: str, check, timeout_s: float, interval_s: float = 0.25):
    """Seconds until `check(replicas, available)` holds for function `name`, or None.

    `status(name)` returns the gateway's FunctionStatus (a dict) or None.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        s = status(name) or {}
        if check(s.get("replicas", 0), s.get("availableReplicas", 0)):
            return time.monotonic() - started
        time.sleep(interval_s)
    return None


def prometheus_value(prometheus_url: str, query: str) -> float:
    """The sum of an instant query's samples (0 when there are none)."""
    answer = requests.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
    answer.raise_for_status()
    return sum(float(r["value"][1]) for r in answer.json()["data"]["result"])
