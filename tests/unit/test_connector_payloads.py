"""What functions receive from the connector: one-record headers and batch bodies."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra" / "connector"))
from kafka_connector.payloads import batch_body, batch_headers, record_headers

from tests.support import FakeKafkaRecord as FakeRecord


def test_one_record_headers_follow_the_openfaas_connector_contract():
    h = record_headers(FakeRecord(b"{}", b"campaign-42"), "ads-kafka-connector", "application/json")
    assert h == {
        "Content-Type": "application/json",
        "X-Topic": "impressions",
        "X-Connector": "ads-kafka-connector",
        "X-Kafka-Partition": "3",
        "X-Kafka-Offset": "7",
        "X-Kafka-Key": "campaign-42",
        "X-Kafka-Timestamp": "1700000000123",
    }


@pytest.mark.parametrize(
    "key",
    [b"\x00\xff\x10binary", "café".encode(), b"new\nline", b"tab\tkey"],
    ids=["binary", "utf8-non-ascii", "newline", "tab"],
)
def test_keys_unsafe_in_a_header_are_base64_with_an_encoding_header(key):
    h = record_headers(FakeRecord(b"x", key), "c", "text/plain")
    assert h["X-Kafka-Key-Enc"] == "b64"
    assert base64.b64decode(h["X-Kafka-Key"]) == key


def test_no_key_and_no_timestamp_mean_no_header():
    h = record_headers(FakeRecord(b"x", None, _timestamp=(TIMESTAMP_NOT_AVAILABLE, 0)), "c", "t")
    assert "X-Kafka-Key" not in h and "X-Kafka-Key-Enc" not in h
    assert "X-Kafka-Timestamp" not in h


def test_printable_kafka_headers_become_x_kafka_headers_and_others_are_dropped():
    record = FakeRecord(
        b"x",
        _headers=[
            ("trace-id", b"abc123"),
            ("binary", b"\x00\x01"),
            ("bad name!", b"v"),
            ("none", None),
            ("X-Topic", b"spoofed"),
        ],
    )
    h = record_headers(record, "c", "t")
    assert h["X-Kafka-trace-id"] == "abc123"
    assert "X-Kafka-binary" not in h and "X-Kafka-bad name!" not in h and "X-Kafka-none" not in h
    assert h["X-Topic"] == "impressions"  # a record header never overrides ours


def test_batch_body_is_an_array_of_records_with_json_values_embedded():
    records = [
        FakeRecord(b'{"impressionId": "i1", "priceMicros": 1500}', b"c1", _offset=10),
        FakeRecord(b"plain text", None, _offset=11, _timestamp=(TIMESTAMP_NOT_AVAILABLE, 0)),
        FakeRecord(b"\xff\xfe\x00", b"\xff\x01", _offset=12),
        FakeRecord(None, b"tomb", _offset=13),
        FakeRecord(b"NaN", b"k", _offset=14),
        FakeRecord(b"42", "clé".encode(), _offset=15),
    ]
    body = json.loads(batch_body(records))
    assert body == [
        {
            "topic": "impressions",
            "partition": 3,
            "offset": 10,
            "key": "c1",
            "timestamp": 1_700_000_000_123,
            "value": {"impressionId": "i1", "priceMicros": 1500},
        },
        {
            "topic": "impressions",
            "partition": 3,
            "offset": 11,
            "key": None,
            "timestamp": None,
            "value": "plain text",
        },
        {
            "topic": "impressions",
            "partition": 3,
            "offset": 12,
            "key": base64.b64encode(b"\xff\x01").decode(),
            "keyEncoding": "b64",
            "timestamp": 1_700_000_000_123,
            "value": base64.b64encode(b"\xff\xfe\x00").decode(),
            "valueEncoding": "b64",
        },
        {
            "topic": "impressions",
            "partition": 3,
            "offset": 13,
            "key": "tomb",
            "timestamp": 1_700_000_000_123,
            "value": None,
        },
        # Python's json accepts NaN; strict JSON does not, so it travels as text.
        {
            "topic": "impressions",
            "partition": 3,
            "offset": 14,
            "key": "k",
            "timestamp": 1_700_000_000_123,
            "value": "NaN",
        },
        {
            "topic": "impressions",
            "partition": 3,
            "offset": 15,
            "key": "clé",
            "timestamp": 1_700_000_000_123,
            "value": 42,
        },
    ]


def test_batch_body_is_strict_json_whatever_the_values():
    weird = [b'"quote\\" and \\u2028"', b"\xe2\x80\xa8 line separator", b"\\", b'{"a":[1,2]}  ']
    records = [FakeRecord(v, _offset=i) for i, v in enumerate(weird)]
    text = batch_body(records).decode("utf-8")

    def reject(name: str) -> None:
        raise ValueError(name)

    parsed = json.loads(text, parse_constant=reject)
    assert [r["offset"] for r in parsed] == [0, 1, 2, 3]
    assert parsed[3]["value"] == {"a": [1, 2]}
    assert parsed[2]["value"] == "\\"


def test_batch_headers_name_the_partition_and_the_offset_range():
    records = [
        FakeRecord(b"1", _offset=5),
        FakeRecord(b"2", _offset=6),
        FakeRecord(b"3", _offset=9),
    ]
    assert batch_headers(records, "ads-kafka-connector") == {
        "Content-Type": "application/json",
        "X-Topic": "impressions",
        "X-Connector": "ads-kafka-connector",
        "X-Kafka-Partition": "3",
        "X-Kafka-Offset": "5",
        "X-Kafka-Last-Offset": "9",
        "X-Kafka-Batch-Size": "3",
    }


def test_a_chunk_is_encoded_once_however_many_batch_functions_subscribe(monkeypatch):
    from kafka_connector import delivery, payloads

    built: list[int] = []
    real = payloads.batch_body
    monkeypatch.setattr(
        payloads, "batch_body", lambda chunk: built.append(len(chunk)) or real(chunk)
    )
    bodies = delivery._Bodies("ads-kafka-connector")
    chunk = [FakeRecord(b'{"n":7}', _offset=7), FakeRecord(b'{"n":8}', _offset=8)]
    for_daily_metrics = bodies.get(("impressions", 3), 0, chunk)
    for_live_counters = bodies.get(("impressions", 3), 0, chunk)
    assert for_live_counters == for_daily_metrics
    assert built == [2]
    assert [r["value"] for r in json.loads(for_daily_metrics[0])] == [{"n": 7}, {"n": 8}]
    assert for_daily_metrics[1]["X-Kafka-Last-Offset"] == "8"
    bodies.get(("impressions", 3), 2, [FakeRecord(b'{"n":9}', _offset=9)])  # the next chunk
    bodies.get(("clicks", 3), 0, chunk)  # another partition
    assert built == [2, 1, 2]
