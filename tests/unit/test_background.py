"""Background loops: a failing step is logged, counted, cleaned up after and retried; `stop`
ends the thread even while it pauses; a `Retried` step ends its thread once it reports done."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_lambda_powertools import Logger

from shared_layer.kernel.background import LOOP_FAILURES, Backoff, Loop, Retried, Step, periodic
from shared_layer.kernel.errors import UpstreamUnavailable

LIVENESS_S = 30.0  # how long a thread may take to get there on a loaded machine (not a speed)


class Outage(Exception):
    pass


@pytest.fixture
def log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def logger(log: io.StringIO, request: pytest.FixtureRequest) -> Logger:
    return Logger(service=f"test-background-{request.node.name}", stream=log)


def lines(log: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.getvalue().splitlines()]


def failures(name: str) -> float:
    return LOOP_FAILURES.labels(name)._value.get()


StartLoop = Callable[..., Loop]


@pytest.fixture
def start_loop(logger: Logger) -> Iterator[StartLoop]:
    """Starts a Loop that retries at once and logs "test step failed"; stops it afterwards."""
    loops: list[Loop] = []

    def start(step: Step, name: str, **options: Any) -> Loop:
        loop = Loop(
            step,
            name=name,
            logger=logger,
            failure="test step failed",
            backoff=Backoff(0.0, 0.0),
            **options,
        )
        loops.append(loop)
        loop.start()
        return loop

    yield start
    for loop in loops:
        loop.stop()


def test_failed_steps_are_logged_counted_cleaned_up_and_retried(
    log: io.StringIO, start_loop: StartLoop
) -> None:
    calls: list[str] = []
    cleaned: list[Exception] = []
    recovered = threading.Event()

    def step() -> float:
        calls.append("step")
        if len(calls) == 1:
            raise Outage("redis away")
        if len(calls) == 2:
            raise KeyError("a bug")
        recovered.set()
        return 60.0  # then it pauses: only `stop` ends that wait early

    before = failures("test-failing-loop")
    start_loop(step, "test-failing-loop", expected=(Outage,), on_failure=cleaned.append)
    assert recovered.wait(LIVENESS_S)

    assert failures("test-failing-loop") - before == 2
    assert [type(exc) for exc in cleaned] == [Outage, KeyError]
    warning, error = (line for line in lines(log) if line["message"] == "test step failed")
    assert warning["level"] == "WARNING"
    assert warning["error"] == "redis away"
    assert warning["loop"] == "test-failing-loop"
    assert error["level"] == "ERROR"
    assert "KeyError" in str(error["exception"])  # an unexpected error keeps its traceback


def test_stop_ends_the_thread_during_a_pause_and_start_runs_it_again(start_loop: StartLoop) -> None:
    turns = threading.Semaphore(0)

    def step() -> float:
        turns.release()
        return 3600.0

    loop = start_loop(step, "test-pausing-loop")
    loop.start()  # harmless: one thread
    assert turns.acquire(timeout=LIVENESS_S)
    assert [t.name for t in threading.enumerate()].count("test-pausing-loop") == 1

    loop.stop(timeout_s=LIVENESS_S)  # returns once the thread ended (or gives up waiting)
    assert not loop.running
    assert "test-pausing-loop" not in [t.name for t in threading.enumerate()]

    loop.start()
    assert turns.acquire(timeout=LIVENESS_S)
    assert loop.running


def test_a_failing_cleanup_does_not_end_the_loop(log: io.StringIO, start_loop: StartLoop) -> None:
    attempts: list[int] = []
    second = threading.Event()

    def step() -> float:
        attempts.append(1)
        if len(attempts) == 1:
            raise Outage("first")
        second.set()
        return 3600.0

    def cleanup(_exc: Exception) -> None:
        raise RuntimeError("cleanup broke")

    start_loop(step, "test-cleanup-loop", on_failure=cleanup)
    assert second.wait(LIVENESS_S)
    assert "cleanup after a failed step failed" in [line["message"] for line in lines(log)]


def test_retried_runs_until_the_step_reports_done(logger: Logger) -> None:
    results = iter([False, True])
    done = threading.Event()

    def rebuild() -> bool:
        finished = next(results)
        if finished:
            done.set()
        return finished

    rebuilds = Retried(
        rebuild, name="test-retried", logger=logger, failure="never", first_pause_s=0.0
    )
    rebuilds.ensure()
    assert done.wait(LIVENESS_S)
    thread = next((t for t in threading.enumerate() if t.name == "test-retried"), None)
    if thread is not None:
        thread.join(LIVENESS_S)
        assert not thread.is_alive()  # the step said done: the thread ended by itself


def test_backoff_doubles_up_to_its_limit() -> None:
    backoff = Backoff(0.1, 0.5)
    assert [backoff.after(p) for p in (0.1, 0.2, 0.4)] == [0.2, 0.4, 0.5]


def test_periodic_runs_at_once_and_retries_a_store_outage_as_a_warning(
    logger: Logger, log: io.StringIO
) -> None:
    runs: list[int] = []
    second = threading.Event()

    def job() -> float:
        runs.append(1)
        if len(runs) == 1:
            raise UpstreamUnavailable("database connection lost")
        second.set()
        return 3600.0

    loop = periodic(job, name="test-periodic", logger=logger, failure="job failed", retry_s=0.0)
    try:
        assert second.wait(LIVENESS_S)
    finally:
        loop.stop()
    (line,) = (line for line in lines(log) if line["message"] == "job failed")
    assert line["level"] == "WARNING"
    assert line["error"] == "database connection lost"
