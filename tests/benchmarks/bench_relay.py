"""The outbox relay at a busy replica's rate: CPU and Redis reads per event, paced and unpaced.

On `make up`'s Redis and Kafka, with a stream and a topic of its own (the platform's relays never
see them): events are recorded at RATE a second for SECONDS while one relay drains them, as in a
bid replica. Two variants run back to back in each of BENCH_ROUNDS rounds: the relay as shipped
(at most one pass per 50 ms, `read_every_s`) and unpaced (`read_every_s=0`, a pass as soon as the
previous one ends, as before pacing). Each gives the relay's CPU per event (this process's CPU
beyond the recording thread's: the relay's thread and its Kafka client's), Redis's and Kafka's,
and XREADGROUP calls per event. What the same processes use while the relay idles, measured
just before, is subtracted: the figures are what the events add.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections import Counter

import redis
from confluent_kafka.admin import AdminClient, NewTopic

from localplatform.profile import DEV
from shared_layer.pipeline.store.relay import OutboxRelay, kafka_producer
from tests.benchmarks.cpu import CpuMeter
from tests.support import CountingReads, event_for

ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
RATE = 200  # events a second: a bid replica at 200 ads/s
SECONDS = 5
IDLE_S = 3  # the idle cost measured first, per variant, and subtracted
VARIANTS = {"paced": 0.05, "unpaced": 0.0}  # read_every_s


def _as_dict(fields: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(fields[::2], fields[1::2], strict=True))


def measure(read_every_s: float, client: redis.Redis, brokers: str, topic: str) -> dict:
    """One variant: record RATE x SECONDS events on a fresh stream, let one relay drain them."""
    stream = f"bench::outbox::{uuid.uuid4().hex[:8]}"
    counting = CountingReads(client)
    relay = OutboxRelay(
        counting, lambda: kafka_producer(brokers), stream=stream, read_every_s=read_every_s
    )
    events = [_as_dict(event_for(topic, n)[1]) for n in range(RATE * SECONDS)]
    meter = CpuMeter(DEV)
    relay.start()
    time.sleep(0.5)  # the group exists and the relay idles
    idle = meter.idle(IDLE_S)
    counting.reads = 0
    before, recorder_before = meter.sample(), time.thread_time()
    began = time.monotonic()
    for n, fields in enumerate(events):
        delay = began + n / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        client.xadd(stream, fields)
    while client.xlen(stream) and time.monotonic() - began < SECONDS + 30:
        time.sleep(0.01)
    used: Counter[str] = meter.sample() - before
    loaded_s = time.monotonic() - began
    recorder = time.thread_time() - recorder_before
    relay.stop()
    client.delete(stream)
    used = CpuMeter.beyond_idle(used, idle, loaded_s)  # what the events add
    per = len(events)
    return {
        "relay": (used["benchmark"] - recorder) / per * 1e6,
        "redis": used["redis"] / per * 1e6,
        "kafka": used["kafka"] / per * 1e6,
        "reads": counting.reads / per,
    }


def main() -> str | None:
    env = DEV.host_env()
    client = redis.Redis.from_url(env["REDIS_URL"])
    brokers = env["KAFKA_BROKERS"]
    topic = f"bench-relay-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": brokers})
    for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        future.result(timeout=15)
    rounds: list[dict[str, dict]] = []
    try:
        for n in range(ROUNDS):
            rounds.append(
                {label: measure(every, client, brokers, topic) for label, every in VARIANTS.items()}
            )
            line = ", ".join(
                f"{label} relay {r['relay']:.0f} us + Redis {r['redis']:.0f} us, "
                f"{r['reads']:.2f} reads"
                for label, r in rounds[-1].items()
            )
            print(f"  round {n + 1} of {ROUNDS}: {line} (per event)", flush=True)
    finally:
        for future in admin.delete_topics([topic]).values():
            future.result(timeout=15)

    def median(label: str, key: str) -> float:
        return statistics.median(r[label][key] for r in rounds)

    for label in VARIANTS:
        total = sum(median(label, key) for key in ("relay", "redis", "kafka"))
        print(
            f"  {label:<8} at {RATE}/s: relay {median(label, 'relay'):.1f} us, Redis "
            f"{median(label, 'redis'):.1f} us, Kafka {median(label, 'kafka'):.1f} us per event "
            f"(together {total:.1f}); {median(label, 'reads'):.2f} XREADGROUP per event",
            flush=True,
        )

    def ratio(keys: tuple[str, ...]) -> float:
        return statistics.median(
            sum(r["paced"][k] for k in keys) / max(1e-9, sum(r["unpaced"][k] for k in keys))
            for r in rounds
        )

    own, everything = ratio(("relay", "redis")), ratio(("relay", "redis", "kafka"))
    return (
        f"paced relay's CPU per event at {RATE} events/s: {own:.2f} of the unpaced one for the "
        f"relay and Redis, {everything:.2f} with Kafka's"
    )


if __name__ == "__main__":
    main()
