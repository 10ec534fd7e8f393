"""One background thread per process that retries a step until it reports done (rebuilds).

Example::

    rebuilds = Retried(recovery.rebuild, name="budget-recovery", logger=LOGGER,
                       failure="budget ledger rebuild failed; retrying")
    rebuilds.ensure()        # cheap to call often: starts the thread unless it runs
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from aws_lambda_powertools import Logger

__all__ = ["Retried"]


class Retried:
    """Runs `step` on a daemon thread until it returns True, pausing longer after each try."""

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
        self._step = step
        self._name = name
        self._logger = logger
        self._failure = failure
        self._first_pause_s = first_pause_s
        self._longest_pause_s = longest_pause_s
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def ensure(self) -> None:
        """Start the thread unless one runs in this process."""
        with self._guard:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        pause = self._first_pause_s
        while True:
            try:
                if self._step():
                    return
            except Exception:  # a store away: try again shortly
                self._logger.exception(self._failure)
            time.sleep(pause)
            pause = min(pause * 2, self._longest_pause_s)
