"""The Kafka connector end to end: real Kafka, the real gateway and provider, a real function.

The tests run their own connector (under its supervisor, as `make up` runs it) on topics
created for this module only, with a 1 s rediscovery, so the platform's connector and the
suite's other users are unaffected. The test-only `recorder` functions (one-record and batch
mode, tests/e2e/stack.connector-test.yml) are built and deployed here with faas-cli and
removed afterwards; they record every invocation in Redis and fail a share of calls when told.

Proven: records produced before any function subscribed wait (paused) and are delivered once
one does; every record arrives at least once with the connector's headers (binary keys in
base64) or in well-formed batches; after several SIGKILLs of the connector mid-stream, with a
function failing a fifth of its calls, nothing is lost and the group's committed offsets reach
the end; a function that keeps failing is called exactly 1 + 5 times per record, then the
record is in the dead-letter topic with the error headers, and consumption goes on.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from localplatform import gateway_api, images, toolchain
from localplatform.profile import REPO_ROOT
from tests.support import free_port, wait_for

STACK = REPO_ROOT / "tests" / "e2e" / "stack.connector-test.yml"
CONNECTOR_SOURCE = REPO_ROOT / "infra" / "connector"
RUN = uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Topics:
    single: str = f"ct-{RUN}-single"  # recorder, one record per call
    dead: str = f"ct-{RUN}-dead"  # recorder, told to fail every call
    batch: str = f"ct-{RUN}-batch"  # recorder-batch
    kill: str = f"ct-{RUN}-kill"  # recorder-batch, while the connector is SIGKILLed
    dlq: str = f"ct-{RUN}-dlq"  # this connector's dead-letter topic


TOPICS = Topics()
PARTITIONS = {TOPICS.single: 4, TOPICS.dead: 1, TOPICS.batch: 4, TOPICS.kill: 6, TOPICS.dlq: 1}


class ConnectorProcess:
    """Our connector under its supervisor, on this module's topics."""

    def __init__(self, platform, log_path: Path) -> None:
        self.health_port = free_port()
        self.group = f"ct-{RUN}-group"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "PYTHONPATH": str(CONNECTOR_SOURCE),
            "PYTHONUNBUFFERED": "1",
            "KAFKA_BROKERS": os.environ["KAFKA_BROKERS"],
            "GATEWAY_URL": platform.gateway,
            "CONNECTOR_SECRETS_DIR": str(platform.profile.secrets_dir),
            "CONNECTOR_TOPICS": ",".join([TOPICS.single, TOPICS.dead, TOPICS.batch, TOPICS.kill]),
            "CONNECTOR_DLQ_TOPIC": TOPICS.dlq,
            "CONNECTOR_GROUP_ID": self.group,
            "CONNECTOR_INSTANCE_ID": f"ct-{RUN}-0",
            "CONNECTOR_REDISCOVER_INTERVAL_S": "1",
            "CONNECTOR_LAG_INTERVAL_S": "1",
            "CONNECTOR_BATCH_SIZE": "200",
            "CONNECTOR_BATCH_WAIT_MS": "20",
            "CONNECTOR_UPSTREAM_TIMEOUT_S": "10",
            "CONNECTOR_HEALTH_PORT": str(self.health_port),
        }
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kafka_connector.supervise"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def health(self) -> tuple[int, dict] | None:
        try:
            r = requests.get(f"{self.url}/healthz", timeout=2)
        except requests.RequestException:
            return None
        return r.status_code, r.json()

    def wait_healthy(self, timeout_s: float = 30) -> dict:
        answer = wait_for(lambda: (h := self.health()) and h[0] == 200 and h[1], timeout_s)
        assert answer, f"connector not healthy: {self.health()}; log:\n{self.log_tail()}"
        return answer

    def metrics(self) -> str:
        return requests.get(f"{self.url}/metrics", timeout=5).text

    def kill_child(self) -> int:
        """SIGKILL the connector process itself (not the supervisor); returns its pid."""
        health = self.health()
        assert health, f"no connector answering; log:\n{self.log_tail()}"
        pid = health[1]["pid"]
        assert pid != self.proc.pid
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def metric_value(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, value = line.rsplit(" ", 1)
        got = series[len(name) :].strip("{}")
        if all(part in got.split(",") for part in want.split(",") if part):
            total += float(value)
    return total


class Produced:
    """Produce and remember where each record landed: (partition, offset) -> (key, value)."""

    def __init__(self) -> None:
        self.producer = Producer(
            {
                "bootstrap.servers": os.environ["KAFKA_BROKERS"],
                "enable.idempotence": True,
                "linger.ms": 5,
            }
        )
        self.where: dict[str, dict[tuple[int, int], tuple[bytes, bytes]]] = {}
        self.errors: list[str] = []

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        def report(err, msg):
            if err is not None:
                self.errors.append(str(err))
            else:
                self.where.setdefault(topic, {})[(msg.partition(), msg.offset())] = (key, value)

        self.producer.produce(topic, key=key, value=value, on_delivery=report)
        self.producer.poll(0)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0
        assert not self.errors, self.errors


def recorded(r: redis.Redis, function: str, topic: str) -> list[dict]:
    return [json.loads(x) for x in r.lrange(f"recorder:{function}:{topic}:calls", 0, -1)]


@pytest.fixture(scope="module")
def kafka_admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": os.environ["KAFKA_BROKERS"]})


@pytest.fixture(scope="module")
def rds() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@pytest.fixture(scope="module")
def topics(kafka_admin) -> Iterator[Topics]:
    new = [NewTopic(t, n, replication_factor=1) for t, n in PARTITIONS.items()]
    for future in kafka_admin.create_topics(new, request_timeout=15).values():
        future.result()
    yield TOPICS
    kafka_admin.delete_topics(list(PARTITIONS), request_timeout=15)


@dataclass
class Stage:
    connector: ConnectorProcess
    produced: Produced
    paused_before_deploy: float
    subscribers_before_deploy: float


@pytest.fixture(scope="module")
def stage(platform, topics, rds, tmp_path_factory) -> Iterator[Stage]:
    """Connector first, then records nobody subscribes to yet, then the recorders."""
    log_path = platform.profile.log_dir / f"connector-e2e-{RUN}.log"
    connector = ConnectorProcess(platform, log_path)
    connector.start()
    produced = Produced()
    mp = pytest.MonkeyPatch()
    try:
        connector.wait_healthy()
        for i in range(12):
            produced.send(topics.single, f"early-{i}".encode(), json.dumps({"early": i}).encode())
        produced.flush()
        paused = wait_for(
            lambda: (
                metric_value(
                    connector.metrics(), "connector_paused_partitions", topic=topics.single
                )
                == 4
                and 4.0
            ),
            timeout_s=10,
        )
        subscribers = metric_value(
            connector.metrics(), "connector_subscribed_functions", topic=topics.single
        )
        # The recorder image is built here, inside the test namespace: offline, from uv's cache.
        mp.setenv("UV_OFFLINE", "1")
        mp.setenv("RECORDER_REDIS_URL", platform.profile.service_env()["REDIS_URL"])
        mp.setenv("RECORDER_TOPICS", f"{topics.single},{topics.dead}")
        mp.setenv("RECORDER_BATCH_TOPICS", f"{topics.batch},{topics.kill}")
        images.build_stack(toolchain.bin_path("faas-cli"), STACK, platform.profile)
        platform.faas_cli("deploy", "-f", str(STACK), "--gateway", platform.gateway)
        for fn in ("recorder", "recorder-batch"):
            gateway_api.wait_available(platform.profile, fn, timeout_s=60)
        yield Stage(connector, produced, paused or 0.0, subscribers)
    finally:
        connector.stop()
        platform.faas_cli("remove", "-f", str(STACK), "--gateway", platform.gateway, check=False)
        mp.undo()
        for key in rds.scan_iter(match="recorder:*"):
            rds.delete(key)


def test_records_wait_paused_until_a_function_subscribes(stage):
    assert stage.subscribers_before_deploy == 0
    assert stage.paused_before_deploy == 4, stage.connector.log_tail()


def test_every_record_arrives_once_per_call_with_the_connector_headers(stage, topics, rds):
    produced = stage.produced
    keys = [b"campaign-7", b"\x00\xffbinary\x01", "café".encode(), b"spaced key"]
    for i in range(40):
        produced.send(topics.single, keys[i % len(keys)], json.dumps({"n": i}).encode())
    produced.flush()
    want = produced.where[topics.single]
    assert len(want) == 52  # 12 early ones plus 40

    def arrived():
        calls = [c for c in recorded(rds, "recorder", topics.single) if c["ok"]]
        seen = {
            (int(c["headers"]["X-Kafka-Partition"]), int(c["headers"]["X-Kafka-Offset"]))
            for c in calls
        }
        return seen >= set(want) and calls

    calls = wait_for(arrived, timeout_s=30)
    assert calls, stage.connector.log_tail()
    for call in calls:
        h = call["headers"]
        where = (int(h["X-Kafka-Partition"]), int(h["X-Kafka-Offset"]))
        key, value = want[where]
        assert h["X-Topic"] == topics.single
        assert h["X-Connector"] == "ads-kafka-connector"
        assert h["Content-Type"] == "application/json"
        assert int(h["X-Kafka-Timestamp"]) > 1_700_000_000_000
        assert call["body"] == value.decode()
        if h.get("X-Kafka-Key-Enc") == "b64":
            assert base64.b64decode(h["X-Kafka-Key"]) == key
            assert not key.isascii() or b"\x00" in key
        else:
            assert h["X-Kafka-Key"] == key.decode()
    # Per-partition order: each partition's offsets arrive ascending (no failures here).
    by_partition: dict[int, list[int]] = {}
    for call in calls:
        h = call["headers"]
        by_partition.setdefault(int(h["X-Kafka-Partition"]), []).append(int(h["X-Kafka-Offset"]))
    for offsets in by_partition.values():
        assert offsets == sorted(offsets)


def test_batch_functions_receive_json_arrays_of_records(stage, topics, rds):
    produced = stage.produced
    for i in range(600):
        value = json.dumps({"n": i}).encode() if i % 10 else f"text {i}".encode()
        produced.send(topics.batch, f"k{i % 37}".encode(), value)
    produced.flush()
    want = produced.where[topics.batch]

    def arrived():
        calls = [c for c in recorded(rds, "recorder-batch", topics.batch) if c["ok"]]
        seen = {(rec["partition"], rec["offset"]) for c in calls for rec in json.loads(c["body"])}
        return seen >= set(want) and calls

    calls = wait_for(arrived, timeout_s=30)
    assert calls, stage.connector.log_tail()
    assert len(calls) < len(want) / 3, "records were not batched"
    for call in calls:
        h, batch = call["headers"], json.loads(call["body"])
        assert h["Content-Type"] == "application/json" and h["X-Topic"] == topics.batch
        assert int(h["X-Kafka-Batch-Size"]) == len(batch) <= 200
        assert {rec["partition"] for rec in batch} == {int(h["X-Kafka-Partition"])}
        offsets = [rec["offset"] for rec in batch]
        assert offsets == sorted(offsets)
        assert (offsets[0], offsets[-1]) == (
            int(h["X-Kafka-Offset"]),
            int(h["X-Kafka-Last-Offset"]),
        )
        for rec in batch:
            assert set(rec) == {"topic", "partition", "offset", "key", "timestamp", "value"}
            key, value = want[(rec["partition"], rec["offset"])]
            assert rec["topic"] == topics.batch and rec["key"] == key.decode()
            assert rec["timestamp"] > 1_700_000_000_000
            expected = value.decode()
            assert rec["value"] == (json.loads(expected) if expected.startswith("{") else expected)


def test_nothing_is_lost_when_the_connector_is_killed_mid_stream(stage, topics, rds, kafka_admin):
    rds.set(f"recorder:recorder-batch:{topics.kill}:fail", "0.2")
    produced, total = stage.produced, 4000
    done = threading.Event()

    def produce():
        for i in range(total):
            produced.send(
                topics.kill, f"k{i}".encode(), json.dumps({"n": i, "pad": "x" * 100}).encode()
            )
            if i % 100 == 99:
                time.sleep(0.05)  # ~2k records/s for ~2 s, spread over the kills
        produced.flush()
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    killed = []
    for _ in range(3):
        time.sleep(0.7)
        stage.connector.wait_healthy(timeout_s=30)
        wait_for(
            lambda: (
                metric_value(
                    stage.connector.metrics(),
                    "connector_records_delivered_total",
                    topic=topics.kill,
                )
                > 0
            ),
            10,
        )
        killed.append(stage.connector.kill_child())
    producer.join()
    assert done.is_set()
    want = set(produced.where[topics.kill])
    assert len(want) == total

    def covered():
        calls = [c for c in recorded(rds, "recorder-batch", topics.kill) if c["ok"]]
        return {
            (rec["partition"], rec["offset"]) for c in calls for rec in json.loads(c["body"])
        } >= want

    assert wait_for(covered, timeout_s=45), stage.connector.log_tail()
    health = stage.connector.wait_healthy()
    assert health["pid"] not in killed and health["restarts"] == 3
    assert metric_value(stage.connector.metrics(), "connector_supervisor_restarts") == 3
    calls = recorded(rds, "recorder-batch", topics.kill)
    assert any(not c["ok"] for c in calls), "the recorder never failed: retries were not exercised"

    # Everything acknowledged is eventually committed: the group's offsets reach the end.
    tps = [TopicPartition(topics.kill, p) for p in range(PARTITIONS[topics.kill])]

    def committed_to_the_end():
        group = kafka_admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(stage.connector.group, tps)]
        )[stage.connector.group].result()
        ends = kafka_admin.list_offsets({tp: OffsetSpec.latest() for tp in tps})
        high = {tp.partition: f.result().offset for tp, f in ends.items()}
        return all(tp.offset == high[tp.partition] for tp in group.topic_partitions)

    assert wait_for(committed_to_the_end, timeout_s=15)

    def lag_is_zero_everywhere():
        want = f'topic="{topics.kill}"'
        lines = [
            x
            for x in stage.connector.metrics().splitlines()
            if x.startswith("connector_consumer_lag{") and want in x
        ]
        return len(lines) == len(tps) and all(float(x.rsplit(" ", 1)[1]) == 0 for x in lines)

    assert wait_for(lag_is_zero_everywhere, timeout_s=10), stage.connector.metrics()


def test_a_function_that_keeps_failing_gets_five_retries_then_a_dead_letter(
    stage, topics, rds, kafka_admin
):
    rds.set(f"recorder:recorder:{topics.dead}:fail", "1")
    produced = stage.produced
    retries_before = metric_value(
        stage.connector.metrics(), "connector_retries_total", function="recorder"
    )
    for i in range(2):
        produced.send(topics.dead, f"doomed-{i}".encode(), json.dumps({"doomed": i}).encode())
    produced.flush()
    # While the function fails, nothing is committed: the record is neither acknowledged nor
    # dead-lettered yet.
    assert wait_for(lambda: recorded(rds, "recorder", topics.dead), timeout_s=15)
    tp = TopicPartition(topics.dead, 0)
    group = kafka_admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(stage.connector.group, [tp])]
    )[stage.connector.group].result()
    assert group.topic_partitions[0].offset < 0, "committed before success or dead letter"
    consumer = Consumer(
        {
            "bootstrap.servers": os.environ["KAFKA_BROKERS"],
            "group.id": f"ct-{RUN}-dlq-reader",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topics.dlq])
    letters = []
    deadline = time.monotonic() + 30
    while len(letters) < 2 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            letters.append(msg)
    consumer.close()
    assert len(letters) == 2, stage.connector.log_tail()
    for i, letter in enumerate(sorted(letters, key=lambda m: dict(m.headers())["dlq.offset"])):
        headers = {k: v.decode() for k, v in letter.headers()}
        assert letter.key() == f"doomed-{i}".encode()
        assert json.loads(letter.value()) == {"doomed": i}
        assert headers["dlq.function"] == "recorder"
        assert headers["dlq.topic"] == topics.dead
        assert (headers["dlq.partition"], headers["dlq.offset"]) == ("0", str(i))
        assert headers["dlq.attempts"] == "6"
        assert headers["dlq.status"] == "500"
        assert headers["dlq.error"].startswith("HTTP 500") and "INJECTED" in headers["dlq.error"]
        assert headers["dlq.batch"] == "false"
    calls = recorded(rds, "recorder", topics.dead)
    per_offset: dict[str, int] = {}
    for c in calls:
        assert not c["ok"]
        per_offset[c["headers"]["X-Kafka-Offset"]] = (
            per_offset.get(c["headers"]["X-Kafka-Offset"], 0) + 1
        )
    assert per_offset == {"0": 6, "1": 6}, "not exactly 1 attempt + 5 retries per record"
    metrics = stage.connector.metrics()
    assert (
        metric_value(metrics, "connector_retries_total", function="recorder") - retries_before == 10
    )
    assert (
        metric_value(
            metrics, "connector_dead_lettered_total", function="recorder", topic=topics.dead
        )
        == 2
    )

    # Consumption goes on: the next record is delivered once the function recovers.
    rds.set(f"recorder:recorder:{topics.dead}:fail", "0")
    produced.send(topics.dead, b"survivor", b'{"survivor": true}')
    produced.flush()
    assert wait_for(
        lambda: any(
            c["ok"] and c["body"] == '{"survivor": true}'
            for c in recorded(rds, "recorder", topics.dead)
        ),
        timeout_s=15,
    ), stage.connector.log_tail()


def test_a_connector_fenced_from_its_group_exits_and_its_successor_consumes(stage, topics, rds):
    """After a broker restart the group coordinator may fence a static member (the fatal error
    "static consumer fenced by other consumer with same group.instance.id"); a fenced consumer
    gets no records ever again. Here a consumer joins with the connector's instance id, which
    fences it the same way: the connector must exit, and the fresh one its supervisor starts
    must consume again."""
    fenced_pid = stage.connector.wait_healthy()["pid"]
    usurper = Consumer(
        {
            "bootstrap.servers": os.environ["KAFKA_BROKERS"],
            "group.id": stage.connector.group,
            "group.instance.id": stage.connector.env["CONNECTOR_INSTANCE_ID"],
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    usurper.subscribe([topics.single])
    try:
        assert wait_for(lambda: usurper.poll(0.2) is None and usurper.assignment(), 30)
    finally:
        usurper.close()

    def successor() -> int | None:
        health = stage.connector.health()
        return health and health[0] == 200 and health[1]["pid"] != fenced_pid and health[1]["pid"]

    assert wait_for(successor, timeout_s=60), stage.connector.log_tail()
    assert "fenced" in stage.connector.log_path.read_text(errors="replace")
    marker = f"after-fencing-{uuid.uuid4().hex[:6]}"
    stage.produced.send(topics.single, b"k", json.dumps({"marker": marker}).encode())
    stage.produced.flush()
    arrived = wait_for(
        lambda: any(marker in c["body"] for c in recorded(rds, "recorder", topics.single)), 60
    )
    assert arrived, stage.connector.log_tail()
