"""of-watchdog's cost: CPU per request through it and straight at the function's own server.

Every replica runs the template's server on 127.0.0.1:5000 behind of-watchdog on :8080, in the
replica's own network namespace. For the no-op and for serve, this picks one replica, runs wrk
inside that namespace (so neither the gateway nor the provider is on the path) against :8080
and then :5000, and counts the CPU time of the replica's processes (watchdog and function; wrk
excluded) per answered request. BENCH_ROUNDS rounds (3 by default), each measuring the two
ports back to back; the figure is the median ratio, watchdog over direct, with both medians.
serve asks for the benchmark placement of bench_serve, so every request runs the whole path
(its bid goes through the gateway in both cases). Runs against the dev platform.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import requests

from localplatform import gateway_api
from localplatform.profile import DEV
from tests.benchmarks.bench_log import line_costs
from tests.benchmarks.bench_serve import PLACEMENT, admin, create_campaign

ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
DURATION_S = 8
CONNECTIONS = 8
WATCHDOG_PORT, FUNCTION_PORT = 8080, 5000
_TICK = os.sysconf("SC_CLK_TCK")


def _replica(function: str) -> tuple[str, int]:
    """(network namespace, watchdog pid) of one ready replica of `function`."""
    url = f"http://127.0.0.1:{DEV.ports.provider_ops}/replicas"
    for r in requests.get(url, timeout=5).json():
        if r["function"] == function and r["ready"] and not r["stopping"]:
            ns = subprocess.run(
                ["ip", "netns", "identify", str(r["pid"])],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            return ns, r["pid"]
    raise SystemExit(f"no ready replica of {function} in the provider's list")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def _replica_pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=True)
    pids = [int(p) for p in out.stdout.split()]
    return [p for p in pids if Path(f"/proc/{p}/comm").exists()
            and Path(f"/proc/{p}/comm").read_text().strip() != "wrk"]  # fmt: skip


def _run(ns: str, port: int, path: str) -> tuple[int, float]:
    """(answered requests, replica CPU seconds) of one wrk run inside the namespace."""
    pids = _replica_pids(ns)
    exe = shutil.which("wrk") or "wrk"
    argv = ["ip", "netns", "exec", ns, exe, "-t1", f"-c{CONNECTIONS}", f"-d{DURATION_S}s",
            f"http://127.0.0.1:{port}{path}"]  # fmt: skip
    before = _cpu_seconds(pids)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    cpu = _cpu_seconds(pids) - before
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return total - (int(bad.group(1)) if bad else 0), cpu


def _log_line_share(serve_us: float) -> str:
    """The per-request log line (bench_log, in this process) beside serve's request."""
    cost = line_costs()
    line = (
        f"serve's log line {cost['ours']:.1f} us = {cost['ours'] / serve_us:.1%} of its request "
        f"(Powertools' formatter: {cost['powertools'] / serve_us:.1%})"
    )
    print(f"  {line}", flush=True)
    return line


def main() -> str | None:
    """Prints the figures; returns the summary line `make bench` repeats at its end."""
    for name in ("noop", "serve", "bid"):
        gateway_api.wait_available(DEV, name)
    campaign = create_campaign()
    query = {"userId": "bench-user", "placementId": PLACEMENT, "countryCode": "US",
             "deviceType": "mobile"}  # fmt: skip
    targets = (("noop", "/"), ("serve", "/?" + urlencode(query)))
    summary = []
    try:
        for function, path in targets:
            ns, _ = _replica(function)
            per = {"watchdog": [], "direct": []}  # microseconds of CPU per answered request
            for n in range(ROUNDS):
                for label, port in (("watchdog", WATCHDOG_PORT), ("direct", FUNCTION_PORT)):
                    answered, cpu = _run(ns, port, path)
                    per[label].append(1e6 * cpu / max(1, answered))
                    print(
                        f"  {function:<5} round {n + 1} {label:<8} {answered / DURATION_S:7.0f} "
                        f"answers/s  {per[label][-1]:6.0f} us CPU each",
                        flush=True,
                    )
            ratios = [w / d for w, d in zip(per["watchdog"], per["direct"], strict=True) if d]
            ratio = statistics.median(ratios)
            line = (
                f"{function} {statistics.median(per['watchdog']):.0f} us through of-watchdog, "
                f"{statistics.median(per['direct']):.0f} us direct: {ratio:.2f}x"
            )
            print(f"  {line} (median of {' / '.join(f'{r:.2f}' for r in ratios)})", flush=True)
            summary.append(line)
            if function == "serve":
                summary.append(_log_line_share(statistics.median(per["watchdog"])))
        return "; ".join(summary)
    finally:
        if campaign is not None:
            admin("DELETE", f"/{campaign}")


if __name__ == "__main__":
    main()
