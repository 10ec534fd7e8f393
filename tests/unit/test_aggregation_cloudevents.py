"""One record per call from Knative's KafkaSource (the open-source path, README "Run on
Knative"): its topic, partition and offset come from the CloudEvent's ce-source and ce-id, so
live-counters can keep its per-partition offsets there too."""

from __future__ import annotations

import pytest

from shared_layer.kernel.errors import BadRequest
from shared_layer.pipeline.domain.aggregation import Intake, by_partition
from shared_layer.pipeline.service.delivery import records_from_request

SOURCE = "/apis/v1/namespaces/ads/kafkasources/live-counters-events#impressions"
BODY = b'{"eventId": "e-1"}'


def cloudevent(**overrides: str) -> dict[str, str]:
    headers = {
        "ce-specversion": "1.0",
        "ce-type": "dev.knative.kafka.event",
        "ce-source": SOURCE,
        "ce-id": "partition:7/offset:1041",
        "ce-subject": "partition:7#1041",
    }
    return {**headers, **overrides}


def test_a_kafkasource_cloudevent_is_one_record_with_its_place():
    [record] = records_from_request(BODY, cloudevent())
    assert (record.topic, record.partition, record.offset) == ("impressions", 7, 1041)
    assert record.value == BODY
    # what live-counters needs: a partition slice ending at the record's offset
    [piece] = by_partition([record], Intake())
    assert (piece.topic, piece.partition, piece.last_offset) == ("impressions", 7, 1041)


def test_the_connector_headers_win_over_cloudevent_attributes():
    headers = {**cloudevent(), "x-topic": "clicks", "x-kafka-partition": "1", "x-kafka-offset": "2"}
    [record] = records_from_request(BODY, headers)
    assert (record.topic, record.partition, record.offset) == ("clicks", 1, 2)


@pytest.mark.parametrize(
    "overrides",
    [
        {"ce-id": "not-a-place"},
        {"ce-id": "partition:-1/offset:3"},
        {"ce-source": "/apis/v1/namespaces/ads/kafkasources/no-topic"},
        {"ce-source": "https://example.com/elsewhere#impressions"},
    ],
)
def test_a_cloudevent_without_a_kafka_place_is_the_callers_fault(overrides):
    with pytest.raises(BadRequest):
        records_from_request(BODY, cloudevent(**overrides))
