"""How far the event pipeline has got: whether Kafka's impressions are all counted in PostgreSQL.

The budget ledger may only be rebuilt from PostgreSQL once every impression already in Kafka has
been counted there (`bidding.service.budget_recovery`). `KafkaPipelineProgress` answers that from
the connector's consumer group: drained means it committed every partition's end offset.

Example::

    progress = KafkaPipelineProgress(brokers, group="daily-metrics")
    progress.drained()          # True once the group has caught up with every partition
"""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from shared_layer.pipeline.domain.events import IMPRESSIONS_TOPIC

__all__ = ["KafkaPipelineProgress"]


class KafkaPipelineProgress:
    """Drained = the connector's consumer group committed every offset of the topics."""

    def __init__(
        self, brokers: str, group: str, topics: Sequence[str] = (IMPRESSIONS_TOPIC,)
    ) -> None:
        self._config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": brokers,
            "client.id": "budget-recovery",
        }
        self._admin = AdminClient(self._config)
        self._group = group
        self._topics = tuple(topics)

    def drained(self) -> bool:
        try:
            return self._drained()
        except Exception:
            # After a broker restart an AdminClient can keep timing out on the connections it
            # cached: the next check starts with a new one.
            self._admin = AdminClient(self._config)
            raise

    def _drained(self) -> bool:
        metadata = self._admin.list_topics(timeout=5)
        partitions = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in metadata.topics[topic].partitions
        ]
        ends = self._admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in partitions}, request_timeout=5
        )
        end_offsets = {(tp.topic, tp.partition): f.result().offset for tp, f in ends.items()}
        request = [ConsumerGroupTopicPartitions(self._group, partitions)]
        committed_reply = self._admin.list_consumer_group_offsets(request, request_timeout=5)
        committed = {
            (tp.topic, tp.partition): tp.offset
            for future in committed_reply.values()
            for tp in future.result().topic_partitions
        }
        return all(
            max(committed.get(key, 0), 0) >= end for key, end in end_offsets.items() if end > 0
        )
