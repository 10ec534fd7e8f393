"""Worker processes that a test starts, and, when the test fails, what each of them did.

A spawned worker that raises, hangs or dies otherwise shows up as a bare `queue.Empty` minutes
later. Here each worker sends (name, kind, payload) on the test's queue: "ready" once its imports
are done, "item" per result, then "done", or "error" with its traceback. `Workers` waits for
those, and fails at once, with a line per process (pid, running or exit code, ready or not, items
sent, how it ended), when one raised, exited without a word, or a deadline passed.

- Start together only once every worker is ready (`ready`, then `meet` the barrier): on a loaded
  machine a spawned process may take a minute to import, and a barrier's timeout would count
  that, not the test.
- A process the test means to SIGKILL must not write to a queue that others share: the writers
  of a multiprocessing Queue share one lock, and a writer killed while it holds the lock silences
  every other writer for good (the queue then looks empty forever). `doomed` gives it a Pipe of
  its own.

Kept small and free of the project's imports, since every spawned worker imports it.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

KILLED = "killed by the test"


def run_reporting(name: str, target: Callable[..., None], results: Any, *args: Any) -> None:
    """A worker's process target: "ready", `target(*args, put)`, then "done" (or "error")."""
    results.put((name, "ready", None))
    try:
        target(*args, lambda item: results.put((name, "item", item)))
    except BaseException:
        results.put((name, "error", traceback.format_exc()))
        raise
    results.put((name, "done", None))


def run_doomed(target: Callable[..., None], channel: Connection, *args: Any) -> None:
    """A doomed worker's process target: "ready" on its own channel, then `target(*args,
    channel)`, which sends on `channel` only."""
    channel.send("ready")
    target(*args, channel)


@dataclass
class WorkerLog:
    process: SpawnProcess
    channel: Connection | None = None  # a doomed worker's own
    ready: bool = False
    items: int = 0
    ended: str = ""  # "done", "error", or KILLED

    def line(self, name: str) -> str:
        code = self.process.exitcode
        if code is None:
            state = "running"
        elif code < 0:
            state = f"exited by {signal.Signals(-code).name}"
        else:
            state = f"exited {code}"
        started = "ready" if self.ready else "not ready"
        said = self.ended or "no end reported"
        return (
            f"  {name:<10} pid {self.process.pid!s:<8} {state:<18} {started:<9}"
            f" {self.items:>4} items, {said}"
        )


class Workers:
    """The processes of one test, started with the spawn method, and their report.

    Example::

        with Workers() as workers:
            start = workers.context.Barrier(4 + 1)
            for n in range(4):
                workers.start(f"charger-{n}", charge, port, n, start)
            workers.ready(timeout_s=300)
            workers.meet(start)
            workers.gather(timeout_s=120, on_item=lambda name, item: seen.append(item))
    """

    def __init__(self) -> None:
        self.context: SpawnContext = multiprocessing.get_context("spawn")
        self.results = self.context.Queue()
        self.logs: dict[str, WorkerLog] = {}
        self.on_item: Callable[[str, Any], None] = lambda name, item: None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *_: object) -> None:
        for log in self.logs.values():
            if log.process.is_alive():
                log.process.kill()
            log.process.join(timeout=30)

    def start(self, name: str, target: Callable[..., None], *args: Any) -> None:
        """Run `target(*args, put)` in a new process; `put(item)` reports one result."""
        process = self.context.Process(
            target=run_reporting, args=(name, target, self.results, *args), name=name
        )
        process.start()
        self.logs[name] = WorkerLog(process)

    def doomed(self, name: str, target: Callable[..., None], *args: Any) -> None:
        """Run `target(*args, channel)` in a process the test will kill; it reports on a Pipe of
        its own (`receive`), never on the shared queue."""
        reader, writer = self.context.Pipe(duplex=False)
        process = self.context.Process(target=run_doomed, args=(target, writer, *args), name=name)
        process.start()
        writer.close()
        self.logs[name] = WorkerLog(process, channel=reader)

    def ready(self, timeout_s: float) -> None:
        """Wait until every worker has imported what it needs and is about to start."""
        for log in self.logs.values():
            if log.channel is not None:
                log.ready = self._recv(log, timeout_s) == "ready"
        self._pump(lambda: all(log.ready for log in self.logs.values()), timeout_s, "ready")

    def meet(self, barrier: Any, timeout_s: float = 60) -> None:
        """Pass `barrier` (made without a timeout, so that a worker ready early waits for the
        slow ones) with the workers, once every one is ready (`ready`)."""
        try:
            barrier.wait(timeout=timeout_s)
        except threading.BrokenBarrierError:
            self.fail(f"not every worker reached the start within {timeout_s:.0f} s")

    def receive(self, name: str, timeout_s: float) -> Any:
        """The next message of the doomed worker `name`, or a failure with the report."""
        log = self.logs[name]
        message = self._recv(log, timeout_s)
        log.items += 1
        return message

    def kill(self, name: str) -> None:
        log = self.logs[name]
        log.process.kill()
        log.process.join(timeout=30)
        log.ended = KILLED

    def gather(self, timeout_s: float, on_item: Callable[[str, Any], None]) -> None:
        """Read the queue until every worker that is not doomed has said "done"; `on_item`
        gets each item with its worker's name."""
        self.on_item = on_item
        shared = [log for log in self.logs.values() if log.channel is None]
        self._pump(lambda: all(log.ended for log in shared), timeout_s, "done")

    def report(self) -> str:
        return "\n".join(log.line(name) for name, log in self.logs.items())

    def fail(self, why: str) -> None:
        raise AssertionError(f"{why}\nworker processes:\n{self.report()}")

    def _pump(self, finished: Callable[[], bool], timeout_s: float, awaited: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not finished():
            gone = [
                name
                for name, log in self.logs.items()
                if log.channel is None and not log.ended and not log.process.is_alive()
            ]
            try:
                name, kind, payload = self.results.get(timeout=0.5)
            except queue.Empty:
                # Exited before a half second of silence: whatever it sent was read already.
                if gone:
                    self.fail(f"{', '.join(gone)} exited without finishing")
                if time.monotonic() > deadline:
                    self.fail(f"not every worker {awaited} within {timeout_s:.0f} s")
                continue
            log = self.logs[name]
            if kind == "ready":
                log.ready = True
            elif kind == "item":
                log.items += 1
                self.on_item(name, payload)
            else:
                log.ended = kind
                if kind == "error":
                    self.fail(f"{name} raised:\n{payload}")

    def _recv(self, log: WorkerLog, timeout_s: float) -> Any:
        assert log.channel is not None
        deadline = time.monotonic() + timeout_s
        while not log.channel.poll(0.5):
            if not log.process.is_alive() or time.monotonic() > deadline:
                self.fail(f"{log.process.name} sent nothing within {timeout_s:.0f} s")
        return log.channel.recv()
