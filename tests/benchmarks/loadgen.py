"""Load generators for the benchmarks: wrk for peak throughput, an open loop for latency.

wrk is closed-loop: each connection waits for its answer before sending again, so when the
server stalls, wrk stops sending and the stall never shows in its percentiles (coordinated
omission). For p50/p95/p99 at a given rate, `open_loop` sends on a fixed timetable and
measures every request from the moment it was *due*, not from when it went out, into an
HdrHistogram; it always reports the rate it really achieved next to the percentiles.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass

import aiohttp
from hdrh.histogram import HdrHistogram

MAX_LATENCY_US = 60_000_000


@dataclass(frozen=True)
class OpenLoopResult:
    target_rate: float
    achieved_rate: float
    sent: int
    ok: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def line(self) -> str:
        return (
            f"target {self.target_rate:8.0f}/s  achieved {self.achieved_rate:8.0f}/s  "
            f"p50 {self.p50_ms:7.2f} ms  p95 {self.p95_ms:7.2f} ms  "
            f"p99 {self.p99_ms:7.2f} ms  max {self.max_ms:8.2f} ms  "
            f"errors {self.errors}/{self.sent}"
        )


async def _open_loop(
    url: str,
    rate: float,
    duration_s: float,
    connections: int,
    timeout_s: float,
    method: str,
    body: bytes | None,
    headers: dict[str, str] | None,
    answered_at: list[float] | None,
) -> OpenLoopResult:
    hist = HdrHistogram(1, MAX_LATENCY_US, 3)
    ok = errors = 0
    total = int(rate * duration_s)
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=30)
    timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def one(session: aiohttp.ClientSession, due: float) -> None:
        nonlocal ok, errors
        try:
            async with session.request(method, url, data=body, headers=headers) as resp:
                await resp.read()
                good = resp.status < 500
                if answered_at is not None and resp.status == 200:
                    answered_at.append(time.perf_counter())
        except (TimeoutError, aiohttp.ClientError):
            good = False
        latency_us = max(1, int((time.perf_counter() - due) * 1_000_000))
        hist.record_value(min(latency_us, MAX_LATENCY_US))
        if good:
            ok += 1
        else:
            errors += 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        start = time.perf_counter() + 0.05
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(session, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    return OpenLoopResult(
        target_rate=rate,
        achieved_rate=total / elapsed if elapsed > 0 else 0.0,
        sent=total,
        ok=ok,
        errors=errors,
        p50_ms=hist.get_value_at_percentile(50) / 1000,
        p95_ms=hist.get_value_at_percentile(95) / 1000,
        p99_ms=hist.get_value_at_percentile(99) / 1000,
        max_ms=hist.get_max_value() / 1000,
    )


def open_loop(
    url: str,
    rate: float,
    duration_s: float = 10.0,
    connections: int = 32,
    timeout_s: float = 5.0,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    cpu: int | None = None,
    answered_at: list[float] | None = None,
) -> OpenLoopResult:
    """Send `rate` requests per second for `duration_s`, on a fixed timetable; `answered_at`,
    if given, gets the time.perf_counter() of every 200 answer.

    Example: `open_loop("http://127.0.0.1:8080/function/noop", rate=500).line()`
    """
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    try:
        return asyncio.run(
            _open_loop(
                url, rate, duration_s, connections, timeout_s, method, body, headers, answered_at
            )
        )
    finally:
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    non_2xx: int
    socket_errors: int

    def line(self) -> str:
        return (
            f"peak {self.requests_per_s:8.0f} req/s  non-2xx {self.non_2xx}  "
            f"socket errors {self.socket_errors}"
        )


def wrk(
    url: str, duration_s: int = 10, connections: int = 16, threads: int = 1, cpu: int | None = None
) -> WrkResult:
    """Peak throughput with wrk (closed loop: good for a maximum, not for percentiles)."""
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed (Debian package wrk)")
    argv = [exe, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency", url]
    if cpu is not None:
        argv = ["taskset", "-c", str(cpu), *argv]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        requests_per_s=rps,
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        socket_errors=sum(int(x) for x in sock.groups()) if sock else 0,
    )
