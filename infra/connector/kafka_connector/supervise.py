"""`python -m kafka_connector.supervise`: run the connector and restart it whenever it dies.

The local platform has no Kubernetes to restart a crashed Deployment, so this small parent
does it: it validates the settings once (invalid settings exit 2 at once, with every problem
listed, instead of a restart loop), starts `python -m kafka_connector`, and restarts it after
0.5 s, doubling up to 30 s, whenever it exits other than by our own stop (back to 0.5 s after
60 s of uptime). The child learns how often it was restarted from CONNECTOR_RESTARTS (exported
as the `connector_supervisor_restarts` metric) and dies with the parent (PR_SET_PDEATHSIG).

SIGTERM or SIGINT to the supervisor is passed on to the child, which stops gracefully
(nothing unacknowledged is committed); after CONNECTOR_STOP_TIMEOUT_S (20) it gets SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

from .settings import Settings, SettingsError

INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
HEALTHY_UPTIME_S = 60.0
_PR_SET_PDEATHSIG = 1


def next_backoff(current: float, uptime_s: float) -> float:
    """The wait before the next restart.

    >>> next_backoff(0.5, uptime_s=1.0), next_backoff(16.0, 1.0), next_backoff(8.0, 120.0)
    (1.0, 30.0, 0.5)
    """
    if uptime_s >= HEALTHY_UPTIME_S:
        return INITIAL_BACKOFF_S
    return min(current * 2, MAX_BACKOFF_S)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def say(message: str) -> None:
    print(f"supervisor: {message}", flush=True)


def main() -> int:
    try:
        Settings.from_env(os.environ)
    except SettingsError as exc:
        print(exc, file=sys.stderr, flush=True)
        return 2
    stop = threading.Event()
    child: list[subprocess.Popen] = []

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()
        if child and child[0].poll() is None:
            child[0].send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop_timeout_s = float(os.environ.get("CONNECTOR_STOP_TIMEOUT_S", "20"))
    restarts, backoff = 0, INITIAL_BACKOFF_S
    while not stop.is_set():
        env = {**os.environ, "CONNECTOR_RESTARTS": str(restarts)}
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "kafka_connector"], env=env, preexec_fn=_die_with_parent
        )
        child[:] = [proc]
        say(f"connector started (pid {proc.pid}, restarts so far {restarts})")
        while proc.poll() is None and not stop.is_set():
            stop.wait(0.2)
        if stop.is_set():
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            say(f"connector stopped (exit status {proc.returncode})")
            return 0
        code = proc.returncode
        if code == 2:
            say("connector rejected its settings; not restarting")
            return 2
        uptime = time.monotonic() - started
        backoff = next_backoff(backoff, uptime) if restarts else INITIAL_BACKOFF_S
        restarts += 1
        say(f"connector exited with {code} after {uptime:.1f}s; restart {restarts} in {backoff}s")
        stop.wait(backoff)
    return 0


if __name__ == "__main__":
    sys.exit(main())
