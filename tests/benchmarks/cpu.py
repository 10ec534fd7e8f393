"""CPU time by process of one platform, for "where does an event (or a served ad) go" figures.

`CpuMeter(profile).sample()` reads /proc for every process of that platform: the services by
their working directory (PostgreSQL backends, Kafka, Redis, Prometheus, gateway, provider,
autoscaler and connector all run in the profile's state directory), function replicas by the
``OPENFAAS_NAME`` and ``TMPDIR`` their provider gives them. The benchmark process itself is its
own line. Two samples subtracted give CPU seconds per role over an interval, process by process:
a replica started meanwhile counts from zero, and one that exited counts up to the last sample
that saw it. Under autoscaling, poll while measuring (`with meter.polling():`) so that a replica
scaled in mid-load loses at most one interval's share, not the whole role's figure.

    meter = CpuMeter(current())
    before = meter.sample()
    with meter.polling():
        ...  # the load
    print(meter.report(meter.sample() - before, per=events, unit="event"))
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
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


_Process = tuple[str, int]  # pid and start time: a pid the kernel reuses is another process


def _stat(pid: str) -> tuple[int, float]:
    """A process's start time (clock ticks since boot) and utime + stime of all its threads."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19]), (int(fields[11]) + int(fields[12])) / _TICK


class CpuSample(dict[_Process, tuple[str, float]]):
    """Each process seen so far: its role and its CPU seconds when last seen."""

    def __sub__(self, before: CpuSample) -> Counter[str]:
        used: dict[str, float] = {}
        for process, (role, seconds) in self.items():
            used[role] = used.get(role, 0.0) + seconds - before.get(process, (role, 0.0))[1]
        return Counter(used)


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
        self._roles: dict[_Process, str | None] = {}
        self._seen = CpuSample()  # every process of the platform seen, as last seen
        self._lock = threading.Lock()

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

    def sample(self) -> CpuSample:
        """Every process of the platform now, and those gone since as they were last seen."""
        now = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                started, seconds = _stat(pid)
            except OSError:  # gone meanwhile
                continue
            process = (pid, started)
            if process not in self._roles:
                self._roles[process] = self._role(pid)
            role = self._roles[process]
            if role is not None:
                now[process] = (role, seconds)
        with self._lock:
            self._seen.update(now)
            return CpuSample(self._seen)

    @contextmanager
    def polling(self, every_s: float = 0.5) -> Iterator[None]:
        """Sample every `every_s` in the background, so a process that exits meanwhile keeps
        its share up to its last poll."""
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(every_s):
                self.sample()

        poller = threading.Thread(target=poll, name="cpu-meter", daemon=True)
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join()

    def idle(self, seconds: float) -> Counter[str]:
        """CPU seconds per second by role over `seconds` in which the caller sends nothing."""
        before, began = self.sample(), time.monotonic()
        with self.polling():
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
