"""What a function receives: headers for one record, or a JSON array body for a batch.

One record per call (the OpenFaaS connector contract): the body is the record's value as it
is, with these headers:

| header | value |
|---|---|
| `X-Topic` | the record's topic |
| `X-Connector` | the connector's name (`ads-kafka-connector`) |
| `X-Kafka-Partition`, `X-Kafka-Offset` | where the record is |
| `X-Kafka-Key` | the key (base64 with `X-Kafka-Key-Enc: b64` unless printable ASCII) |
| `X-Kafka-Timestamp` | the record's timestamp, ms since the epoch (absent if unknown) |
| `X-Kafka-<Name>` | each Kafka header whose name and value are printable ASCII |
| `Content-Type` | CONNECTOR_CONTENT_TYPE |

A batch (functions annotated `com.openfaas.kafka.batch: "true"`) is a JSON array, one element per
record of one partition, in offset order: `{"topic", "partition", "offset", "key", "timestamp",
"value"}`, plus `"headers"` (an object of the record's printable-ASCII Kafka headers, e.g. the ad's
``x-request-id`` and ``traceparent``) when it has any. `value` is the JSON the record holds, else
its UTF-8 text, else base64 with `"valueEncoding": "b64"`; `key` is the UTF-8 text, else base64 with
`"keyEncoding": "b64"`; both are null when absent. The headers are X-Topic, X-Connector,
X-Kafka-Partition, X-Kafka-Offset (the first record's), X-Kafka-Last-Offset, X-Kafka-Batch-Size and
`Content-Type: application/json`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Protocol

import msgspec
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

_encode_str = json.JSONEncoder(ensure_ascii=False).encode
_encode_headers = msgspec.json.Encoder().encode


class Record(Protocol):
    """What we read from a confluent_kafka.Message (tests pass a small stand-in)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def headers(
        self,
    ) -> dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None: ...


def _printable_ascii(raw: bytes) -> bool:
    return raw.isascii() and all(32 <= b < 127 for b in raw)


def record_headers(record: Record, connector: str, content_type: str) -> dict[str, str]:
    """Headers of a one-record invocation (see the module docstring)."""
    headers = {
        "Content-Type": content_type,
        "X-Topic": record.topic() or "",
        "X-Connector": connector,
        "X-Kafka-Partition": str(record.partition()),
        "X-Kafka-Offset": str(record.offset()),
    }
    key = record.key()
    if key is not None:
        if _printable_ascii(key):
            headers["X-Kafka-Key"] = key.decode("ascii")
        else:
            headers["X-Kafka-Key"] = base64.b64encode(key).decode("ascii")
            headers["X-Kafka-Key-Enc"] = "b64"
    ts_type, ts = record.timestamp()
    if ts_type != TIMESTAMP_NOT_AVAILABLE:
        headers["X-Kafka-Timestamp"] = str(ts)
    for name, value in _text_headers(record):
        headers.setdefault(f"X-Kafka-{name}", value)
    return headers


def _text_headers(record: Record) -> list[tuple[str, str]]:
    """The record's Kafka headers that can travel as HTTP header text (name and value)."""
    text = []
    headers = record.headers() or ()
    for name, value in headers.items() if isinstance(headers, dict) else headers:
        if isinstance(value, str):
            value = value.encode("utf-8")
        if value is None or not name or not _printable_ascii(name.encode()):
            continue
        if _printable_ascii(value) and name.replace("-", "").replace("_", "").isalnum():
            text.append((name, value.decode("ascii")))
    return text


def batch_headers(records: Sequence[Record], connector: str) -> dict[str, str]:
    first, last = records[0], records[-1]
    return {
        "Content-Type": "application/json",
        "X-Topic": first.topic() or "",
        "X-Connector": connector,
        "X-Kafka-Partition": str(first.partition()),
        "X-Kafka-Offset": str(first.offset()),
        "X-Kafka-Last-Offset": str(last.offset()),
        "X-Kafka-Batch-Size": str(len(records)),
    }


_VALIDATE_JSON = msgspec.json.Decoder(msgspec.Raw)  # checks the syntax, builds no objects


def _json_text(raw: bytes) -> str | None:
    """The record's value as JSON text, or None if it is not strict JSON in UTF-8.

    msgspec scans the value once without building Python objects (NaN and Infinity are not
    JSON to it either); the UTF-8 decode catches what a raw scan would let through.
    """
    try:
        text = raw.decode("utf-8")
        _VALIDATE_JSON.decode(raw)
    except (UnicodeDecodeError, msgspec.DecodeError):
        return None
    return text


def batch_body(records: Sequence[Record]) -> bytes:
    """The JSON array a batch function receives (see the module docstring).

    Built as text: a value that already is JSON is validated once and embedded as it is, not
    decoded into Python objects and encoded again, which halves the per-record cost.
    """
    topic_json = _encode_str(records[0].topic() or "")
    parts = []
    for r in records:
        key = r.key()
        extra = ""
        if key is None:
            key_json = "null"
        else:
            try:
                key_json = _encode_str(key.decode("utf-8"))
            except UnicodeDecodeError:
                key_json = '"' + base64.b64encode(key).decode("ascii") + '"'
                extra += ',"keyEncoding":"b64"'
        value = r.value()
        if value is None:
            value_json = "null"
        else:
            as_json = _json_text(value)
            if as_json is not None:
                value_json = as_json
            else:
                try:
                    value_json = _encode_str(value.decode("utf-8"))
                except UnicodeDecodeError:
                    value_json = '"' + base64.b64encode(value).decode("ascii") + '"'
                    extra += ',"valueEncoding":"b64"'
        ts_type, ts = r.timestamp()
        ts_json = "null" if ts_type == TIMESTAMP_NOT_AVAILABLE else str(ts)
        if r.headers():
            named = dict(_text_headers(r))
            if named:
                extra += ',"headers":' + _encode_headers(named).decode()
        parts.append(
            f'{{"topic":{topic_json},"partition":{r.partition()},"offset":{r.offset()},'
            f'"key":{key_json},"timestamp":{ts_json},"value":{value_json}{extra}}}'
        )
    return ("[" + ",".join(parts) + "]").encode("utf-8")
