"""The connector's delivery semantics against the real Kafka, with a scripted stand-in gateway.

The gateway here is a small HTTP server in the test (discovery with basic auth, and
`/function/<name>` answering as each test scripts it), so that failures, hangs and shutdowns
can be timed exactly; the real gateway is exercised in tests/e2e/test_connector_*.py. Kafka is
the test platform's (KAFKA_BROKERS), with topics created per test.

Proven: SIGTERM during retries or during a hanging call exits promptly and commits nothing
that was not acknowledged, and a new process delivers those records from where the group
stood; a cycle that outlives CONNECTOR_MAX_CYCLE_S commits its progress and reads the rest
again, attempting no record twice; with two functions on a topic, one failing for good is
dead-lettered after exactly six attempts while the other gets every record and the offsets
are committed; a function unavailable (503) for longer than the retry schedule loses nothing:
its records are neither dead-lettered nor committed, and arrive once it answers; /healthz is
503 until the gateway has been reached, and discovery sends the gateway's credentials.
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
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from localplatform.profile import REPO_ROOT
from tests.support import LoopbackServer, QuietHandler, free_port, wait_for

CONNECTOR_SOURCE = REPO_ROOT / "infra" / "connector"
BROKERS = os.environ.get("KAFKA_BROKERS", "127.0.0.1:9092")


class StubGateway:
    """GET /system/functions (basic auth) and POST /function/<name> as scripted."""

    def __init__(self) -> None:
        self.functions: list[dict] = []
        self.behaviour: dict[str, str] = {}  # name -> "ok" | "fail" | "down" | "hang"
        self.calls: list[tuple[str, dict, bytes]] = []
        self.listing_ok = True
        self.auth_seen: list[str | None] = []
        self.release = threading.Event()
        stub = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                stub.auth_seen.append(self.headers.get("Authorization"))
                expected = "Basic " + base64.b64encode(b"admin:pw").decode()
                if self.path.startswith("/system/functions"):
                    if self.headers.get("Authorization") != expected:
                        return self.send(401, b"unauthorized")
                    if not stub.listing_ok:
                        return self.send(502, b"provider down")
                    return self.send(200, json.dumps(stub.functions).encode())
                self.send(404, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                name = self.path.removeprefix("/function/")
                stub.calls.append((name, dict(self.headers), body))
                mode = stub.behaviour.get(name, "ok")
                if mode == "hang":
                    stub.release.wait(60)
                if mode == "fail":  # the function refuses the records
                    return self.send(500, b'{"error":"BROKEN"}')
                if mode == "down":  # the function cannot take them now
                    return self.send(503, b'{"error":"DOWN"}')
                self.send(200, b"ok")

        self.server = LoopbackServer(Handler)
        self.url = self.server.base_url

    def calls_to(self, name: str) -> list[tuple[dict, bytes]]:
        return [(h, b) for n, h, b in list(self.calls) if n == name]


class Topic:
    def __init__(self, admin: AdminClient, partitions: int = 1) -> None:
        self.name = f"cs-{uuid.uuid4().hex[:8]}"
        self.dlq = f"{self.name}-dlq"
        for f in admin.create_topics(
            [NewTopic(self.name, partitions, 1), NewTopic(self.dlq, 1, 1)]
        ).values():
            f.result()

    def produce(self, count: int) -> None:
        producer = Producer({"bootstrap.servers": BROKERS, "enable.idempotence": True})
        for i in range(count):
            producer.produce(self.name, key=f"k{i}".encode(), value=json.dumps({"n": i}).encode())
        assert producer.flush(15) == 0


class Connector:
    def __init__(
        self,
        gateway: StubGateway,
        topic: Topic,
        secrets: Path,
        group: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(CONNECTOR_SOURCE),
            "PYTHONUNBUFFERED": "1",
            "KAFKA_BROKERS": BROKERS,
            "GATEWAY_URL": gateway.url,
            "CONNECTOR_SECRETS_DIR": str(secrets),
            "CONNECTOR_TOPICS": topic.name,
            "CONNECTOR_DLQ_TOPIC": topic.dlq,
            "CONNECTOR_GROUP_ID": group,
            "CONNECTOR_REDISCOVER_INTERVAL_S": "0.5",
            "CONNECTOR_HEALTH_PORT": str(self.port),
            "CONNECTOR_BATCH_WAIT_MS": "20",
            "CONNECTOR_UPSTREAM_TIMEOUT_S": "30",
            "CONNECTOR_SHUTDOWN_GRACE_S": "1",
            **(extra or {}),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kafka_connector"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def health(self) -> int | None:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code
        except requests.RequestException:
            return None

    def terminate(self, timeout_s: float = 10) -> tuple[int, float, str]:
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=timeout_s)
        return self.proc.returncode, time.monotonic() - began, out.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def gateway() -> Iterator[StubGateway]:
    stub = StubGateway()
    yield stub
    stub.release.set()
    stub.server.close()


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    (tmp_path / "basic-auth-user").write_text("admin")
    (tmp_path / "basic-auth-password").write_text("pw")
    return tmp_path


@pytest.fixture(scope="module")
def admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": BROKERS})


@pytest.fixture
def running() -> Iterator[list[Connector]]:
    started: list[Connector] = []
    yield started
    for c in started:
        c.kill()


def committed(admin: AdminClient, group: str, topic: str, partitions: int = 1) -> list[int]:
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)])
    return [tp.offset for tp in result[group].result().topic_partitions]


def subscribe(gateway: StubGateway, topic: Topic, *names: str, batch: bool = False) -> None:
    annotations = {"topic": topic.name}
    if batch:
        annotations["com.openfaas.kafka.batch"] = "true"
    gateway.functions = [{"name": n, "annotations": annotations} for n in names]


@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_sigterm_commits_nothing_unacknowledged_and_a_new_process_resumes(
    mode, gateway, secrets, admin, running
):
    topic, group = Topic(admin), f"cs-{uuid.uuid4().hex[:6]}"
    subscribe(gateway, topic, "fn")
    gateway.behaviour["fn"] = mode
    topic.produce(5)
    running.append(first := Connector(gateway, topic, secrets, group))
    assert wait_for(lambda: gateway.calls_to("fn"), timeout_s=20)
    code, took, out = first.terminate()
    assert code == 0, out
    assert took < 5, f"SIGTERM took {took:.1f}s:\n{out}"
    assert committed(admin, group, topic.name) == [-1001], "unacknowledged offsets committed"

    gateway.behaviour["fn"] = "ok"
    gateway.release.set()
    gateway.calls.clear()
    running.append(second := Connector(gateway, topic, secrets, group))
    assert wait_for(lambda: committed(admin, group, topic.name) == [5], timeout_s=20)
    got = [json.loads(body)["n"] for _, body in gateway.calls_to("fn")]
    assert sorted(set(got)) == [0, 1, 2, 3, 4] and got[:5] == [0, 1, 2, 3, 4]
    second.terminate()


def test_one_function_failing_for_good_does_not_hold_back_the_other(
    gateway, secrets, admin, running
):
    topic, group = Topic(admin, partitions=2), f"cs-{uuid.uuid4().hex[:6]}"
    subscribe(gateway, topic, "healthy", "broken", batch=True)
    gateway.behaviour["broken"] = "fail"
    topic.produce(20)
    running.append(c := Connector(gateway, topic, secrets, group))
    assert wait_for(lambda: sum(committed(admin, group, topic.name, 2)) == 20, timeout_s=30)
    healthy = [r for _, b in gateway.calls_to("healthy") for r in json.loads(b)]
    assert sorted(r["value"]["n"] for r in healthy) == list(range(20))
    broken_calls = gateway.calls_to("broken")
    batches = {(h["X-Kafka-Partition"], h["X-Kafka-Offset"]) for h, _ in broken_calls}
    assert len(broken_calls) == 6 * len(batches), "not exactly six attempts per batch"

    consumer = Consumer(
        {"bootstrap.servers": BROKERS, "group.id": group + "-r", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic.dlq])
    letters = []
    deadline = time.monotonic() + 15
    while len(letters) < 20 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            letters.append({k: v.decode() for k, v in msg.headers()})
    consumer.close()
    assert len(letters) == 20
    assert {h["dlq.function"] for h in letters} == {"broken"}
    assert {h["dlq.batch"] for h in letters} == {"true"}
    assert {h["dlq.status"] for h in letters} == {"500"}
    c.terminate()


def test_health_waits_for_the_gateway_and_discovery_sends_its_credentials(
    gateway, secrets, admin, running
):
    topic = Topic(admin)
    gateway.listing_ok = False
    running.append(c := Connector(gateway, topic, secrets, f"cs-{uuid.uuid4().hex[:6]}"))
    assert wait_for(lambda: c.health() == 503, timeout_s=15)
    time.sleep(1)
    assert c.health() == 503
    gateway.listing_ok = True
    assert wait_for(lambda: c.health() == 200, timeout_s=10)
    assert "Basic " + base64.b64encode(b"admin:pw").decode() in gateway.auth_seen
    code, _, out = c.terminate()
    assert code == 0, out


def test_a_cycle_out_of_time_commits_its_progress_and_reads_the_rest_again(
    gateway, secrets, admin, running
):
    topic, group = Topic(admin), f"cs-{uuid.uuid4().hex[:6]}"
    subscribe(gateway, topic, "fn")
    gateway.behaviour["fn"] = "fail"  # every record: 3 attempts, 0.3 s, then a dead letter
    topic.produce(8)
    extra = {"CONNECTOR_RETRY_DELAYS_MS": "150,150", "CONNECTOR_MAX_CYCLE_S": "0.5"}
    running.append(c := Connector(gateway, topic, secrets, group, extra))
    seen = []

    def progress():
        offset = committed(admin, group, topic.name)[0]
        if offset >= 0 and (not seen or seen[-1] != offset):
            seen.append(offset)
        return offset == 8

    assert wait_for(progress, timeout_s=30)
    assert len(seen) >= 2, f"progress was not committed cycle by cycle: {seen}"
    offsets = [int(h["X-Kafka-Offset"]) for h, _ in gateway.calls_to("fn")]
    assert Counter(offsets) == {i: 3 for i in range(8)}, "a record was attempted again"
    assert offsets == sorted(offsets)
    code, _, out = c.terminate()
    assert code == 0, out


def test_an_unavailable_function_keeps_its_records_until_it_answers(
    gateway, secrets, admin, running
):
    """503 (say, PostgreSQL restarting behind daily-metrics) is not the records' fault: after
    the retry schedule they are held and tried again next cycle, never dead-lettered."""
    topic, group = Topic(admin), f"cs-{uuid.uuid4().hex[:6]}"
    subscribe(gateway, topic, "fn", batch=True)
    gateway.behaviour["fn"] = "down"
    topic.produce(6)
    extra = {"CONNECTOR_RETRY_DELAYS_MS": "100,100"}
    running.append(c := Connector(gateway, topic, secrets, group, extra))
    # Three schedules' worth of attempts: a dead letter would have been written after the first.
    assert wait_for(lambda: len(gateway.calls_to("fn")) >= 9, timeout_s=30)
    assert committed(admin, group, topic.name) == [-1001], "committed past unavailable records"
    gateway.behaviour["fn"] = "ok"
    assert wait_for(lambda: committed(admin, group, topic.name) == [6], timeout_s=20)
    delivered = [r["value"]["n"] for _, b in gateway.calls_to("fn") for r in json.loads(b)]
    assert sorted(set(delivered)) == list(range(6))
    health = requests.get(f"http://127.0.0.1:{c.port}/metrics", timeout=5).text
    assert 'connector_dead_lettered_total{function="fn"' not in health
    held = [x for x in health.splitlines() if x.startswith("connector_held_records_total{")]
    assert held and float(held[0].rsplit(" ", 1)[1]) >= 6 * 2
    consumer = Consumer(
        {"bootstrap.servers": BROKERS, "group.id": group + "-r", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic.dlq])
    letters = [m for m in (consumer.poll(0.5) for _ in range(6)) if m and m.error() is None]
    consumer.close()
    assert letters == [], "an unavailable function's records were dead-lettered"
    code, _, out = c.terminate()
    assert code == 0, out
