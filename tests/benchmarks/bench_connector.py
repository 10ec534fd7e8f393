"""The Kafka connector: events/s from Kafka into a batch-mode function, beside a bare consumer.

A fresh 12-partition topic gets N impression-sized JSON events. Then, side by side in one run:
a bare confluent-kafka consumer drains the topic (the ceiling: no HTTP, no function) and
reads N events while they are produced (the end-to-end ceiling of one Python producer); our
connector (its own process with the defaults `make up` uses: polls of up to 5000 records,
batches of up to 1000 per call) drains the same backlog into
a batch-mode function that answers 200 at once (the noop image, deployed as
`connector-bench-sink` with `topic` and `com.openfaas.kafka.batch` annotations); then, with
the connector caught up, N more events are produced as fast as one Python producer can and
timed from the first produce to the last record acknowledged (end to end). For comparison, a
few thousand events go to a function in the default one-record-per-call mode. Runs against the
dev platform (`make up`); ADS_PROFILE selects another one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import requests
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from localplatform import gateway_api, secrets
from localplatform.profile import REPO_ROOT, current
from tests.support import free_port

EVENTS = 200_000
PARTITIONS = 12
SINGLE_EVENTS = 5_000
SINK = "connector-bench-sink"  # batch mode
SINGLE_SINK = "connector-bench-single"  # one record per call
SINK_IMAGE = "ads/noop:0.1.0"


def _event(i: int) -> bytes:
    return json.dumps(
        {
            "eventId": str(uuid.UUID(int=i)),
            "type": "impression",
            "impressionId": f"imp-{i}",
            "campaignId": f"c-{i % 500}",
            "adId": f"ad-{i % 2000}",
            "priceMicros": 1500 + i % 1000,
            "timestamp": "2026-11-25T12:00:00Z",
        },
        separators=(",", ":"),
    ).encode()


def produce(brokers: str, topic: str, count: int, start: int = 0) -> float:
    """Produce `count` events as fast as one idempotent producer can; returns seconds."""
    producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "linger.ms": 20})
    began = time.perf_counter()
    for i in range(start, start + count):
        while True:
            try:
                producer.produce(topic, key=f"c-{i % 500}".encode(), value=_event(i))
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(60)
    return time.perf_counter() - began


def bare_drain(brokers: str, topic: str, count: int) -> float:
    """A bare consumer reading `count` records in batches of 1000; returns records/s."""
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"bench-bare-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen, began = 0, None
    while seen < count:
        batch = consumer.consume(1000, 1.0)
        if batch and began is None:
            began = time.perf_counter()
        seen += sum(1 for m in batch if m.error() is None)
    elapsed = time.perf_counter() - (began or time.perf_counter())
    consumer.commit(asynchronous=False)
    consumer.close()
    return count / elapsed if elapsed else float("inf")


def bare_live(brokers: str, topic: str, count: int) -> float:
    """Produce `count` events while a bare consumer (in a thread) reads them; returns events/s
    from the first produce to the last record read: the end-to-end ceiling on this machine."""
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"bench-bare-live-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    while not consumer.assignment():
        consumer.poll(0.1)
    done = threading.Event()
    finished: list[float] = []

    def drain() -> None:
        seen = 0
        while seen < count:
            seen += sum(1 for m in consumer.consume(1000, 0.5) if m.error() is None)
        finished.append(time.perf_counter())
        done.set()

    reader = threading.Thread(target=drain)
    reader.start()
    began = time.perf_counter()
    produce(brokers, topic, count)
    reader.join(300)
    consumer.close()
    return count / (finished[0] - began) if finished else 0.0


def delivered(port: int, function: str) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    pattern = re.compile(r'^connector_records_delivered_total\{[^}]*function="' + function + '"')
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if pattern.match(line))


def wait_delivered(
    port: int, function: str, target: float, timeout_s: float = 300
) -> tuple[float, float, float]:
    """(when delivery was first seen, how many had been delivered then, when `target` was
    reached), times from perf_counter; a connector still starting is waited for."""
    first, at_first, deadline = None, 0.0, time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        try:
            n = delivered(port, function)
        except requests.RequestException:
            time.sleep(0.1)
            continue
        now = time.perf_counter()
        if first is None and n > 0:
            first, at_first = now, n
        if n >= target:
            return first or now, at_first, now
        time.sleep(0.05)
    raise SystemExit(f"{function}: {delivered(port, function):.0f} of {target:.0f} delivered")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (noise-robust, unlike wall-clock rates)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def deploy_sink(gateway: str, auth: tuple[str, str], name: str, topic: str, batch: bool) -> None:
    annotations = {"topic": topic}
    if batch:
        annotations["com.openfaas.kafka.batch"] = "true"
    deployment = {
        "service": name,
        "image": SINK_IMAGE,
        "annotations": annotations,
        "labels": {"com.openfaas.scale.min": "1"},
        "envVars": {"WAITRESS_THREADS": "8"},
    }
    remove_sink(gateway, auth, name)
    r = requests.post(f"{gateway}/system/functions", json=deployment, auth=auth, timeout=30)
    r.raise_for_status()


def remove_sink(gateway: str, auth: tuple[str, str], name: str) -> None:
    requests.delete(
        f"{gateway}/system/functions", json={"functionName": name}, auth=auth, timeout=30
    )


def main() -> None:
    profile = current()
    brokers = profile.host_env()["KAFKA_BROKERS"]
    user, password_file = secrets.ensure_basic_auth(profile)
    auth = (user, password_file.read_text().strip())
    run = uuid.uuid4().hex[:6]
    topic, single_topic = f"bench-connector-{run}", f"bench-connector-single-{run}"
    bare_topic = f"bench-connector-bare-{run}"
    topics = [topic, single_topic, bare_topic]
    admin = AdminClient({"bootstrap.servers": brokers})
    new = [NewTopic(t, PARTITIONS, replication_factor=1) for t in topics]
    for f in admin.create_topics(new).values():
        f.result()
    gateway = profile.gateway_url
    deploy_sink(gateway, auth, SINK, topic, batch=True)
    deploy_sink(gateway, auth, SINGLE_SINK, single_topic, batch=False)
    connector = None
    try:
        gateway_api.wait_available(profile, SINK)
        gateway_api.wait_available(profile, SINGLE_SINK)
        seconds = produce(brokers, topic, EVENTS)
        print(f"  produce {EVENTS} events: {EVENTS / seconds:,.0f} events/s (one producer)")
        bare = bare_drain(brokers, topic, EVENTS)
        print(f"  bare confluent-kafka consumer, drain:            {bare:>10,.0f} events/s")
        bare_e2e = bare_live(brokers, bare_topic, EVENTS)
        print(f"  produce -> bare consumer, e2e:                   {bare_e2e:>10,.0f} events/s")

        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT / "infra" / "connector"),
            "KAFKA_BROKERS": brokers,
            "GATEWAY_URL": gateway,
            "CONNECTOR_SECRETS_DIR": str(profile.secrets_dir),
            "CONNECTOR_TOPICS": f"{topic},{single_topic}",
            "CONNECTOR_DLQ_TOPIC": "events-dlq",
            "CONNECTOR_GROUP_ID": f"bench-connector-{run}",
            "CONNECTOR_REDISCOVER_INTERVAL_S": "1",
            "CONNECTOR_HEALTH_PORT": str(port),
            "CONNECTOR_LOG_LEVEL": "WARNING",
        }
        connector = subprocess.Popen(
            [sys.executable, "-m", "kafka_connector"], env=env, start_new_session=True
        )
        first, at_first, last = wait_delivered(port, SINK, EVENTS)
        rate = (EVENTS - at_first) / (last - first) if last > first else float("inf")
        cpu = cpu_seconds(connector.pid)
        print(
            f"  connector -> batch function, drain:              {rate:>10,.0f} events/s "
            f"({rate / bare:.2f} of bare; connector CPU incl. start-up "
            f"{cpu / EVENTS * 1e6:.1f} us/event)"
        )
        began = time.perf_counter()
        produce(brokers, topic, EVENTS, start=EVENTS)
        *_, done = wait_delivered(port, SINK, 2 * EVENTS)
        live = EVENTS / (done - began)
        print(
            f"  produce -> connector -> batch function, e2e:     {live:>10,.0f} events/s "
            f"({live / bare_e2e:.2f} of bare e2e; one producer on the same cores)"
        )
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        calls = sum(
            float(x.rsplit(" ", 1)[1])
            for x in text.splitlines()
            if x.startswith("connector_invocations_total{") and f'"{SINK}"' in x
        )
        print(
            f"  batch invocations: {calls:.0f} ({2 * EVENTS / max(calls, 1):.0f} events per call)"
        )
        began = time.perf_counter()
        produce(brokers, single_topic, SINGLE_EVENTS)
        *_, done = wait_delivered(port, SINGLE_SINK, SINGLE_EVENTS)
        print(
            f"  produce -> connector -> one-record calls, e2e:   "
            f"{SINGLE_EVENTS / (done - began):>10,.0f} events/s ({SINGLE_EVENTS} events)"
        )
    finally:
        if connector is not None:
            os.killpg(connector.pid, signal.SIGTERM)
            connector.wait(30)
        remove_sink(gateway, auth, SINK)
        remove_sink(gateway, auth, SINGLE_SINK)
        admin.delete_topics(topics)


if __name__ == "__main__":
    main()
