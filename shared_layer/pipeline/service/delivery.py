"""What the Kafka connector delivers, as `KafkaRecord`s: the HTTP framing of one invocation.

Both aggregation functions receive either a batch, a JSON array of one partition's records in
offset order (``{"topic", "partition", "offset", "key", "timestamp", "value"}``,
infra/connector), or one record per call (the event as the body, its place in ``X-Topic`` /
``X-Kafka-Partition`` / ``X-Kafka-Offset`` headers, or, from Knative's KafkaSource, in the
CloudEvent's ``ce-source`` and ``ce-id``). The Kafka metadata stays here, at the edge; the pure
aggregation (`pipeline.domain.aggregation`) sees records only.

Example::

    records = delivered_records(request)  # parsed, and the ads' request ids on its log line
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Final

import msgspec

from shared_layer.kernel.errors import BadRequest
from shared_layer.kernel.http import Request
from shared_layer.pipeline.domain.aggregation import KafkaRecord, correlation_ids
from shared_layer.pipeline.domain.events import WireEvent, events_from_wire

__all__ = ["delivered_records", "records_from_request"]

_KAFKA_HEADER_PREFIX: Final = "x-kafka-"


def delivered_records(request: Request) -> list[KafkaRecord]:
    """The records of one connector invocation (`records_from_request`); the request ids of the
    ads they came from go on the invocation's log line, so that one search for an ad's request id
    finds the batch that counted it."""
    records = records_from_request(request.body, request.headers)
    request.annotate(requestIds=correlation_ids(records))
    return records


def records_from_request(body: bytes, headers: Mapping[str, str]) -> list[KafkaRecord]:
    """The records of one invocation: a batch (JSON array) or one record (body plus headers).

    `headers` must have lower-case names (as `http.Request.headers`). Raises BadRequest when
    the body is neither: that is the caller's fault, not one record's.

    >>> records_from_request(b'[{"topic":"clicks","partition":2,"offset":7,"value":{}}]', {})
    [KafkaRecord(topic='clicks', partition=2, offset=7, value=b'{}')]
    >>> records_from_request(b'{"eventId":"x"}', {"x-topic": "clicks", "x-kafka-offset": "9",
    ...                      "x-kafka-partition": "0"})[0].offset
    9
    """
    if body.lstrip()[:1] != b"[":
        if "x-topic" not in headers and "ce-source" in headers:
            return [_cloudevent_record(body, headers)]
        kafka_headers = {
            name.removeprefix(_KAFKA_HEADER_PREFIX): value
            for name, value in headers.items()
            if name.startswith(_KAFKA_HEADER_PREFIX)
        }
        return [
            KafkaRecord(
                topic=headers.get("x-topic", ""),
                partition=_header_int(headers, "x-kafka-partition"),
                offset=_header_int(headers, "x-kafka-offset"),
                value=body,
                headers=kafka_headers,
            )
        ]
    try:  # the common case, every record a well-formed event: one pass, events and all
        elements = _TYPED_BATCH.decode(body)
        events = events_from_wire([element.value for element in elements])
        return [
            KafkaRecord(e.topic, e.partition, e.offset, event, e.headers or {})
            for e, event in zip(elements, events, strict=True)
        ]
    except (msgspec.DecodeError, ValueError):
        pass  # some record is not: read each on its own, so only that one is set aside
    try:
        batch = _BATCH.decode(body)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"the batch is not an array of records: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the batch is not valid JSON: {exc}") from exc
    return [_batch_record(element) for element in batch]


_Offset = Annotated[int, msgspec.Meta(ge=0)]


class _BatchElement(msgspec.Struct, frozen=True):
    """One element of the connector's batch body; its value stays raw JSON for parse_event."""

    topic: str
    partition: _Offset
    offset: _Offset
    value: msgspec.Raw = msgspec.Raw(b"null")
    valueEncoding: str | None = None
    headers: dict[str, Any] | None = None


_BATCH: Final = msgspec.json.Decoder(list[_BatchElement])


class _TypedElement(msgspec.Struct, frozen=True):
    """A batch element whose value is a well-formed event (see events.parse_event)."""

    topic: str
    partition: _Offset
    offset: _Offset
    value: WireEvent
    headers: dict[str, Any] | None = None


_TYPED_BATCH: Final = msgspec.json.Decoder(list[_TypedElement])


def _batch_record(element: _BatchElement) -> KafkaRecord:
    # A binary value (valueEncoding) is not an event: parse_event names it invalid.
    value = b"null" if element.valueEncoding is not None else bytes(element.value)
    if not element.headers:
        return KafkaRecord(element.topic, element.partition, element.offset, value)
    # The connector writes header names as Kafka has them (ours are lower-case); values are
    # checked where they are used (Correlation.from_headers).
    return KafkaRecord(element.topic, element.partition, element.offset, value, element.headers)


# Knative's KafkaSource sends one record per request as a binary-mode CloudEvent:
# ce-source "/apis/v1/namespaces/<ns>/kafkasources/<name>#<topic>",
# ce-id "partition:<p>/offset:<o>" (knative.dev/docs/eventing/sources/kafka-source).
_CE_SOURCE = re.compile(r"^/apis/v1/namespaces/[^/]+/kafkasources/[^#]+#(?P<topic>.+)$")
_CE_ID = re.compile(r"^partition:(?P<partition>\d+)/offset:(?P<offset>\d+)$")


def _cloudevent_record(body: bytes, headers: Mapping[str, str]) -> KafkaRecord:
    """One record from a KafkaSource CloudEvent: its topic and place come from ce-source and
    ce-id instead of the connector's X-Topic / X-Kafka-* headers."""
    source = _CE_SOURCE.match(headers.get("ce-source", ""))
    place = _CE_ID.match(headers.get("ce-id", ""))
    if not source or not place:
        raise BadRequest("a CloudEvent from a KafkaSource needs ce-source (#topic) and ce-id")
    return KafkaRecord(
        topic=source.group("topic"),
        partition=int(place.group("partition")),
        offset=int(place.group("offset")),
        value=body,
    )


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise BadRequest(f"header {name} must be a non-negative whole number")
    return int(raw)
