"""The dead-letter topic: where a record goes when a function still fails after the last retry.

A dead letter is the original record (same key, value and Kafka headers) plus headers that say
what failed:

| header | value |
|---|---|
| `dlq.error` | the last failure, e.g. `HTTP 500: {...}` or `no answer within 30s` |
| `dlq.status` | the last HTTP status, empty for a timeout or connection error |
| `dlq.function` | the function that failed |
| `dlq.topic`, `dlq.partition`, `dlq.offset` | where the original record is |
| `dlq.attempts` | how many times it was tried (6 with the default schedule) |
| `dlq.batch` | `true` if the record failed as part of a batch invocation |
| `dlq.connector` | the connector's name |
| `dlq.failed-at` | Unix time in ms |

The producer is idempotent (acks=all). `flush()` must succeed before the consumer commits the
offsets of dead-lettered records; if it does not, the connector exits without committing and
the records are consumed again after the restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from confluent_kafka import KafkaError, Producer

from . import metrics
from .invoker import Outcome
from .payloads import Record

log = logging.getLogger(__name__)


class DeadLetterError(RuntimeError):
    """Dead letters could not be written: the offsets they cover must not be committed."""


class DeadLetters:
    def __init__(
        self, brokers: str, topic: str, connector: str, flush_timeout_s: float = 30.0
    ) -> None:
        self.topic = topic
        self._connector = connector
        self._flush_timeout_s = flush_timeout_s
        self._errors: list[str] = []
        self._pending = 0
        self._lock = threading.Lock()
        self._producer = Producer(
            {
                "bootstrap.servers": brokers,
                "enable.idempotence": True,
                "linger.ms": 5,
                "client.id": f"{connector}-dlq",
                "error_cb": self._on_error,
            }
        )

    def _on_error(self, err: KafkaError) -> None:
        log.warning("dead letters: producer: %s", err)

    def _on_delivery(self, err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            self._errors.append(str(err))

    def add(self, records: Sequence[Record], function: str, outcome: Outcome, batch: bool) -> None:
        """Queue one dead letter per record (thread-safe; flush() makes them durable)."""
        last = outcome.last
        failed_at = str(int(time.time() * 1000)).encode()
        for r in records:
            headers = list(r.headers() or ())
            headers += [
                ("dlq.error", last.error.encode("utf-8", "replace")),
                ("dlq.status", str(last.status or "").encode()),
                ("dlq.function", function.encode()),
                ("dlq.topic", (r.topic() or "").encode()),
                ("dlq.partition", str(r.partition()).encode()),
                ("dlq.offset", str(r.offset()).encode()),
                ("dlq.attempts", str(outcome.attempts).encode()),
                ("dlq.batch", b"true" if batch else b"false"),
                ("dlq.connector", self._connector.encode()),
                ("dlq.failed-at", failed_at),
            ]
            self._produce(r.key(), r.value(), headers)
            metrics.DEAD_LETTERED.labels(function, r.topic() or "").inc()
        log.warning(
            "dead-lettered %d record(s) of %s[%s] from offset %s for %s after %d attempts: %s",
            len(records),
            records[0].topic(),
            records[0].partition(),
            records[0].offset(),
            function,
            outcome.attempts,
            last.error,
        )

    def _produce(self, key: bytes | None, value: bytes | None, headers: list) -> None:
        while True:
            try:
                self._producer.produce(
                    self.topic, value=value, key=key, headers=headers, on_delivery=self._on_delivery
                )
                with self._lock:
                    self._pending += 1
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.1)

    def flush(self) -> None:
        """Wait until every queued dead letter is acknowledged; raise if any was not."""
        if not self._pending:
            return
        left = self._producer.flush(self._flush_timeout_s)
        with self._lock:
            errors, self._errors = self._errors, []
            self._pending = 0
        if left or errors:
            raise DeadLetterError(
                f"{left} dead letter(s) still unacknowledged after {self._flush_timeout_s:g}s, "
                f"{len(errors)} failed: {errors[:3]}"
            )
