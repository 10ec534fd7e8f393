"""CPU time by process of one platform, for "where does an event (or a served ad) go" figures.

`CpuMeter(profile).sample()` reads /proc for every process of that platform: the services by
their working directory (PostgreSQL backends, Kafka, Redis, Prometheus, gateway, provider,
autoscaler and connector all run in the profile's state directory), function replicas by the
``OPENFAAS_NAME`` and ``TMPDIR`` their provider gives them. The benchmark process itself is its
own line. Two samples subtracted give CPU seconds per role over an interval (processes that
exit meanwhile lose their share: keep the platform steady while measuring).

    meter = CpuMeter(current())
    before = meter.sample()
    ...  # the load
    print(meter.report(meter.sample() - before, per=events, unit="event"))
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

from localplatform.profile import Profile

_TICK = os.sysconf("SC_CLK_TCK")
_SERVICES = {  # process name -> role
    "postgres": "postgres",
    "redis-server": "redis",
    "java": "kafka",
    "prometheus": "prometheus",
    "gateway": "gateway",
    "ads-provider": "provider",
    "ads-autoscaler": "autoscaler",
}


def _cpu_seconds(pid: str) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _environ(pid: str) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(
        item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item
    )


class CpuMeter:
    """CPU seconds by role of the platform `profile` runs (see the module docstring)."""

    def __init__(self, profile: Profile) -> None:
        self._root = str(profile.state_dir.resolve())
        self._self = str(os.getpid())

    def _role(self, pid: str) -> str | None:
        if pid == self._self:
            return "benchmark"
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            if cwd.startswith(self._root):
                if name == "python":
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    return "connector" if b"kafka_connector" in cmdline else "python"
                return _SERVICES.get(name, name)
            env = _environ(pid)
        except OSError:  # gone, or not ours to read
            return None
        if env.get("TMPDIR", "").startswith(self._root) and "OPENFAAS_NAME" in env:
            return env["OPENFAAS_NAME"]
        return None

    def sample(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            role = self._role(pid)
            if role is None:
                continue
            try:
                totals[role] += _cpu_seconds(pid)
            except OSError:
                continue
        return totals

    def idle(self, seconds: float) -> Counter[str]:
        """CPU seconds per second by role over `seconds` in which the caller sends nothing."""
        before, began = self.sample(), time.monotonic()
        time.sleep(seconds)
        used, elapsed = self.sample() - before, time.monotonic() - began
        return Counter({role: spent / elapsed for role, spent in used.items()})

    @staticmethod
    def beyond_idle(used: Counter[str], idle: Counter[str], seconds: float) -> Counter[str]:
        """What a load of `seconds` used beyond the idle platform's `idle` rates (a role may
        come out slightly negative: noise)."""
        return Counter({role: used[role] - idle[role] * seconds for role in used | idle})

    @staticmethod
    def report(used: Counter[str], *, per: int, unit: str) -> str:
        """One line: total and each role's CPU microseconds per `unit`, biggest first."""
        total = sum(used.values())
        parts = [
            f"{role} {seconds / per * 1e6:.1f}"
            for role, seconds in used.most_common()
            if seconds / per * 1e6 >= 0.05
        ]
        return f"CPU us/{unit}: total {total / per * 1e6:.1f} = " + ", ".join(parts)
