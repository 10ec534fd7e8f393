"""`python -m kafka_connector`: one connector process (settings from the environment).

Exit status: 0 after SIGTERM/SIGINT, 2 for invalid settings, 3 when dead letters could not
be written (nothing was committed for them; the records are read again after a restart),
1 for anything else. `python -m kafka_connector.supervise` restarts it on any status but 0/2.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from . import metrics
from .dead_letters import DeadLetterError, DeadLetters
from .delivery import DeliveryLoop
from .discovery import Discovery
from .health import HealthReport, HealthServer
from .invoker import Invoker
from .lag import LagMonitor
from .settings import Settings, SettingsError

log = logging.getLogger("kafka_connector")

EXIT_SETTINGS = 2
EXIT_DEAD_LETTERS = 3


def main() -> int:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(exc, file=sys.stderr, flush=True)
        return EXIT_SETTINGS
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    restarts = int(os.environ.get("CONNECTOR_RESTARTS", "0") or 0)
    metrics.RESTARTS.set(restarts)
    log.info("starting (pid %d, restart %d): %r", os.getpid(), restarts, settings)

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    discovery = Discovery(
        settings.gateway_url, settings.basic_auth, settings.topics, settings.rediscover_interval_s
    )
    dead_letters = DeadLetters(settings.brokers, settings.dlq_topic, settings.connector_name)
    loop: DeliveryLoop | None = None

    def touch() -> None:
        if loop is not None:
            loop.touch()

    invoker = Invoker(
        settings.gateway_url,
        settings.upstream_timeout_s,
        settings.retry_delays_s,
        pool_size=settings.max_in_flight,
        stop=stop,
        on_progress=touch,
    )
    loop = DeliveryLoop(settings, lambda: discovery.current, invoker, dead_letters, stop)
    # A cycle may legitimately wait out a whole retry schedule on a slow function.
    stale_after_s = settings.upstream_timeout_s + sum(settings.retry_delays_s) + 15
    reach_stale_after_s = max(3 * settings.rediscover_interval_s, 3 * settings.lag_interval_s, 30.0)
    lag = LagMonitor(settings.brokers, settings.group_id, settings.lag_interval_s, loop.assigned)

    def report() -> HealthReport:
        return HealthReport.judge(
            now=time.monotonic(),
            last_progress=loop.last_progress,
            gateway_reached=discovery.last_success,
            kafka_reached=lag.last_success,
            stale_after_s=stale_after_s,
            reach_stale_after_s=reach_stale_after_s,
            assigned=len(loop.assigned()),
            paused=len(loop.paused()),
            restarts=restarts,
        )

    health = HealthServer(settings.health_host, settings.health_port, report)
    health.start()
    discovery.refresh()
    discovery.start()
    lag.start()
    code = 0
    try:
        loop.run()
    except DeadLetterError as exc:
        log.error("dead letters not written, exiting without committing: %s", exc)
        code = EXIT_DEAD_LETTERS
    except Exception:
        log.exception("connector failed, exiting without committing")
        code = 1
    finally:
        stop.set()
        discovery.stop()
        lag.stop()
        loop.close()
        try:
            dead_letters.flush()
        except DeadLetterError as exc:
            log.error("%s", exc)
        health.stop()
        log.info("stopped (exit status %d)", code)
        logging.shutdown()
    return code


if __name__ == "__main__":
    # os._exit: worker threads stuck in an HTTP call must not delay the exit; nothing of
    # theirs is committed anyway.
    os._exit(main())
