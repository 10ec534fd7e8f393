"""Background loops: the one way a process runs work beside its requests.

Every loop is a named daemon thread that calls a step, pauses as long as the step asks, and stops
when its Event is set (`stop`), at once and not at the end of a sleep. A step that raises is
never swallowed: it is logged (an `expected` error as a warning with the error's text, anything
else with its traceback), counted in ``background_loop_failures_total{loop}``, handed to
`on_failure` (to drop a broken connection, say) and tried again after a pause that doubles up to
a limit, until a step succeeds.

Example::

    def relay_step() -> float:
        relay.run_once()
        return 0.0           # XREADGROUP blocked already: no further pause

    loop = Loop(relay_step, name="outbox-relay", logger=LOGGER,
                failure="outbox relay step failed", expected=REDIS_ERRORS)
    loop.start()             # harmless if it runs
    loop.stop(timeout_s=5)   # sets the Event and waits for the step under way

    rebuilds = Retried(recovery.rebuild, name="budget-recovery", logger=LOGGER,
                       failure="budget ledger rebuild failed; retrying")
    rebuilds.ensure()        # cheap to call often: starts the thread unless it runs
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from shared_layer.kernel.errors import AdServerError
from shared_layer.kernel.metrics import counter

__all__ = ["LOOP_FAILURES", "Backoff", "Loop", "Retried", "Step", "periodic"]

LOOP_FAILURES = counter(
    "background_loop_failures_total", "Steps of a background loop that raised, per loop", ["loop"]
)

# A step returns the seconds to pause before the next step (0: at once), or None when its work
# is done and the thread may end.
Step = Callable[[], float | None]


@dataclass(frozen=True, slots=True)
class Backoff:
    """The pause after a failed step: `first_s`, doubled after each further failure up to
    `longest_s`, back to `first_s` once a step succeeds."""

    first_s: float = 0.1
    longest_s: float = 2.0

    def after(self, pause_s: float) -> float:
        return min(pause_s * 2, self.longest_s)


class Loop:
    """Runs `step` on a daemon thread named `name` until `stop` (see the module docstring)."""

    def __init__(
        self,
        step: Step,
        *,
        name: str,
        logger: Logger,
        failure: str,
        backoff: Backoff = Backoff(),
        expected: tuple[type[BaseException], ...] = (),
        on_failure: Callable[[Exception], None] | None = None,
    ) -> None:
        self.name = name
        self._step = step
        self._logger = logger
        self._failure = failure
        self._backoff = backoff
        self._expected = expected
        self._on_failure = on_failure
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        LOOP_FAILURES.labels(name)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> None:
        """Start the thread unless it runs (again after `stop` or after the step said done)."""
        with self._guard:
            if self.running:
                return
            self._stopping = threading.Event()  # the old thread, if any, keeps its set Event
            self._thread = threading.Thread(
                target=self._run, args=(self._stopping,), name=self.name, daemon=True
            )
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Set the Event and wait up to `timeout_s` for the step under way to return."""
        with self._guard:
            self._stopping.set()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def _run(self, stopping: threading.Event) -> None:
        retry_s = self._backoff.first_s
        while not stopping.is_set():
            try:
                pause_s = self._step()
            except Exception as exc:  # counted and logged, then tried again
                self._failed(exc)
                stopping.wait(retry_s)
                retry_s = self._backoff.after(retry_s)
                continue
            if pause_s is None:
                return
            retry_s = self._backoff.first_s
            if pause_s > 0:
                stopping.wait(pause_s)

    def _failed(self, exc: Exception) -> None:
        LOOP_FAILURES.labels(self.name).inc()
        if isinstance(exc, self._expected):
            self._logger.warning(self._failure, extra={"loop": self.name, "error": str(exc)})
        else:
            self._logger.exception(self._failure, extra={"loop": self.name})
        if self._on_failure is not None:
            try:
                self._on_failure(exc)
            except Exception:  # cleaning up after a failure must not end the loop
                self._logger.exception(
                    "cleanup after a failed step failed", extra={"loop": self.name}
                )


def periodic(
    job: Callable[[], float], *, name: str, logger: Logger, failure: str, retry_s: float
) -> Loop:
    """A started `Loop` for a job on a schedule where no cron exists: it runs now, then after
    the pause each run returns; a failed run is tried again after `retry_s`. Our own errors
    (a store away) are expected there and logged as warnings."""
    loop = Loop(
        job,
        name=name,
        logger=logger,
        failure=failure,
        backoff=Backoff(retry_s, retry_s),
        expected=(AdServerError,),
    )
    loop.start()
    return loop


class Retried:
    """Runs `step` on a `Loop` until it returns True, pausing longer after each try (a rebuild
    that waits for its stores)."""

    def __init__(
        self,
        step: Callable[[], bool],
        *,
        name: str,
        logger: Logger,
        failure: str,
        first_pause_s: float = 1.0,
        longest_pause_s: float = 10.0,
    ) -> None:
        self._until_done = step
        self._backoff = Backoff(first_pause_s, longest_pause_s)
        self._pause_s = first_pause_s
        self._loop = Loop(
            self._try, name=name, logger=logger, failure=failure, backoff=self._backoff
        )

    def ensure(self) -> None:
        """Start the thread unless one runs in this process."""
        self._loop.start()

    def _try(self) -> float | None:
        if self._until_done():
            self._pause_s = self._backoff.first_s
            return None
        pause_s, self._pause_s = self._pause_s, self._backoff.after(self._pause_s)
        return pause_s
