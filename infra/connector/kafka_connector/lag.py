"""Consumer lag per assigned partition: high watermark minus the group's committed offset.

Measured from outside the consumer loop with an AdminClient every few seconds, so that paused
partitions (no subscriber yet) and a loop busy with retries are measured too. Before the group
has committed anything on a partition, the lag counts from its low watermark (the connector
reads from the earliest offset). Its last success also tells /healthz that Kafka answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from . import metrics

log = logging.getLogger(__name__)


def lag_of(high: int, low: int, committed: int) -> int:
    """Records not yet committed: from the committed offset, or the low watermark if none.

    >>> lag_of(high=100, low=10, committed=-1001), lag_of(high=100, low=10, committed=40)
    (90, 60)
    """
    start = committed if committed >= 0 else low
    return max(high - max(start, low), 0)


class LagMonitor:
    def __init__(
        self,
        brokers: str,
        group_id: str,
        interval_s: float,
        assigned: Callable[[], set[tuple[str, int]]],
    ) -> None:
        self._config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": brokers,
            "client.id": f"{group_id}-lag",
        }
        self._admin = AdminClient(self._config)
        self._group_id = group_id
        self._interval_s = interval_s
        self._assigned = assigned
        self._stop = threading.Event()
        self._shown: set[tuple[str, int]] = set()
        self.last_success: float | None = None  # time.monotonic() of the last good answer

    def start(self) -> None:
        threading.Thread(target=self._run, name="lag", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
                self.last_success = time.monotonic()
            except (KafkaException, ValueError) as exc:
                log.warning("lag: cannot measure consumer lag: %s", exc)
                # After a broker restart an AdminClient can keep timing out on connections it
                # cached (seen with librdkafka 2.16): start afresh with a new one.
                self._admin = AdminClient(self._config)
            self._stop.wait(self._interval_s)

    def refresh(self) -> dict[tuple[str, int], int]:
        partitions = sorted(self._assigned())
        for gone in self._shown - set(partitions):
            metrics.LAG.remove(gone[0], str(gone[1]))
        self._shown = set(partitions)
        if not partitions:
            self._admin.list_topics(timeout=10)  # still tells whether Kafka answers
            return {}
        tps = [TopicPartition(t, p) for t, p in partitions]
        request = [ConsumerGroupTopicPartitions(self._group_id, tps)]
        group = self._admin.list_consumer_group_offsets(request, request_timeout=10)
        committed = {
            (tp.topic, tp.partition): tp.offset
            for tp in group[self._group_id].result().topic_partitions
        }
        high = self._offsets(tps, OffsetSpec.latest())
        low = self._offsets(tps, OffsetSpec.earliest())
        lags = {}
        for key in partitions:
            if key in high and key in low:
                lags[key] = lag_of(high[key], low[key], committed.get(key, -1001))
                metrics.LAG.labels(key[0], str(key[1])).set(lags[key])
        return lags

    def _offsets(self, tps: list[TopicPartition], spec: OffsetSpec) -> dict[tuple[str, int], int]:
        futures = self._admin.list_offsets({tp: spec for tp in tps}, request_timeout=10)
        return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}
