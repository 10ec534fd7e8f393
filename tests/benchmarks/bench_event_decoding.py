"""Per-event CPU of a connector batch, in process: encoding it and reading it back, old and new.

One 700-event batch of impressions (the size the pipeline's batches reach at 20k events/s),
built from Kafka-record stand-ins carrying the ad's correlation headers. Side by side, in
interleaved rounds: the connector's batch encoding with the value validated by msgspec (ours)
and by json.loads (what it replaced); the aggregation's read (decode the batch and read every
event strictly) with msgspec Structs (ours) and with json.loads plus the careful reader (what
it replaced, still the fallback for anything the fast pass does not accept as it is). Medians
of the rounds, in CPU microseconds per event, and the ratio.

Run: `make bench`, or `python -m tests.benchmarks.bench_event_decoding`.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra" / "connector"))
from kafka_connector import payloads

from shared_layer.kernel.correlation import Correlation
from shared_layer.pipeline.domain import events as events_module
from shared_layer.pipeline.domain.aggregation import DayWindow, read_events
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.service.delivery import records_from_request
from tests.support import FakeKafkaRecord

BATCH = 700
ROUNDS = 15
AT = datetime(2026, 12, 3, 12, tzinfo=UTC)


def _records() -> list[FakeKafkaRecord]:
    records = []
    for n in range(BATCH):
        event = AdEvent.impression(
            impression_id=str(uuid.uuid4()),
            campaign_id=str(uuid.uuid4()),
            ad_id=str(uuid.uuid4()),
            user_id=f"user-{n}",
            placement_id="placement-001",
            bid_cpm_micros=2_500_000,
            price_micros=2_500,
            country="US",
            device_type="mobile",
            at=AT,
        )
        headers = Correlation(f"req-{n}", f"00-{uuid.uuid4().hex}-{'1' * 16}-01").kafka_headers()
        records.append(FakeKafkaRecord(event.to_bytes(), _offset=n, _headers=headers))
    return records


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_loads_text(raw: bytes) -> str | None:
    """The validation msgspec replaced in the connector."""
    try:
        text = raw.decode("utf-8")
        json.loads(text, parse_constant=_not_json)
    except ValueError:
        return None
    return text


def _read_with_json(body: bytes) -> int:
    """The read msgspec replaced: json.loads of the batch, then the careful reader per event."""
    events = [
        events_module._parse_carefully(e["value"]) for e in json.loads(body, parse_float=Decimal)
    ]
    return len(events)


def _timed(fn: Callable[[], object]) -> float:
    """CPU microseconds per event of one call (process time: a busy machine's other processes
    do not count, as they would in wall time)."""
    started = time.process_time()
    fn()
    return (time.process_time() - started) / BATCH * 1e6


def main() -> None:
    records = _records()
    body = payloads.batch_body(records)
    window = DayWindow.last_days(AT.date(), 30)

    def read_ours() -> int:
        intake = read_events(records_from_request(body, {}), window)
        assert len(intake.events) == BATCH
        return len(intake.events)

    def encode_with_json() -> bytes:
        original = payloads._json_text
        payloads._json_text = _json_loads_text
        try:
            return payloads.batch_body(records)
        finally:
            payloads._json_text = original

    cases = {
        "connector encode, msgspec validation": lambda: payloads.batch_body(records),
        "connector encode, json.loads validation": encode_with_json,
        "aggregation read, msgspec Structs": read_ours,
        "aggregation read, json.loads + careful reader": lambda: _read_with_json(body),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):  # interleaved, so a busy moment of the machine hits every case
        for name, fn in cases.items():
            samples[name].append(_timed(fn))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{BATCH}-event batch, median of {ROUNDS} interleaved rounds, us per event:")
    for name, value in medians.items():
        print(f"  {name:<48} {value:7.2f}")
    names = list(medians)
    print(f"  connector encode: new / old = {medians[names[0]] / medians[names[1]]:.2f}")
    print(f"  aggregation read: new / old = {medians[names[2]] / medians[names[3]]:.2f}")


if __name__ == "__main__":
    main()
