"""Apache Kafka, one KRaft node: the event pipeline (impressions, clicks, dead letters).

No tarball and no Kafka install: the broker's jars come from Maven Central through
infra/kafka/pom.xml, copied once per Kafka version into the shared artifacts directory and
then run with plain `java -cp`. The node is broker and controller at once, with a static
voter list (`controller.quorum.voters`), so formatting needs no `--standalone`.

Clients reach it on two listeners, each advertised as itself, because Kafka hands every
client the advertised address of the listener it came in on: HOST (127.0.0.1) for tests and
tools, BRIDGE (the bridge address, when it exists) for function replicas in their network
namespaces.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from ..component import Command, Component, ComponentError
from ..prerequisites import require
from ..profile import REPO_ROOT, shared_dir
from ._addresses import bridge_ip_if_present

KAFKA_INFRA = REPO_ROOT / "infra" / "kafka"
POM = KAFKA_INFRA / "pom.xml"
LOG4J2_CONFIG = KAFKA_INFRA / "log4j2.xml"

# Topic -> partitions. 12 lets the connector and aggregation scale to 12 consumers per topic;
# dead letters are rare and only need ordering per key.
TOPICS: dict[str, int] = {"impressions": 12, "clicks": 12, "events-dlq": 3}
# Dead letters are kept a month so there is time to look at them; events a week (the
# specification's "7-30 days", the broker default below).
_TOPIC_CONFIGS: dict[str, dict[str, str]] = {"events-dlq": {"retention.ms": str(30 * 86_400_000)}}

JVM_OPTIONS = [
    "-Xms512m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
]


def kafka_version() -> str:
    """The Kafka version pinned in infra/kafka/pom.xml (names the jar directory)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(POM).getroot()  # noqa: S314 (our own file, not untrusted input)
    node = root.find("m:properties/m:kafka.version", ns)
    if node is None or not node.text:
        raise ComponentError(f"kafka: no <kafka.version> property in {POM}")
    return node.text.strip()


def libs_dir() -> Path:
    return shared_dir() / "kafka" / f"libs-{kafka_version()}"


def ensure_libs() -> Path:
    """Resolve the broker's jars once (Maven's own cache, ~/.m2, makes a re-resolve cheap).

    Maven copies into a scratch directory that is renamed into place only when complete, so
    an interrupted download is never mistaken for a finished one.
    """
    target = libs_dir()
    if target.is_dir():
        return target
    mvn = require("mvn")
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    argv = [mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies"]
    argv += ["-DincludeScope=runtime", f"-DoutputDirectory={scratch}"]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ComponentError(f"kafka: resolving jars failed:\n{done.stdout}{done.stderr}")
    try:
        scratch.rename(target)
    except OSError:  # another run finished first
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _new_cluster_id() -> str:
    # Kafka's form (Uuid.toString): URL-safe base64 of 16 random bytes, no padding. Kafka
    # never hands out ids starting with "-" (they read as command-line options).
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _ignore(_error: KafkaError) -> None:
    pass


class Kafka(Component):
    name = "kafka"
    start_timeout_s = 90.0

    @property
    def area(self) -> Path:
        return self.profile.data_dir / self.name

    @property
    def storage_dir(self) -> Path:
        """Kafka's log.dirs: the metadata log and every topic partition."""
        return self.area / "storage"

    @property
    def config_path(self) -> Path:
        return self.area / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.profile.ports.kafka}"

    def fetch(self) -> Path:
        """The build step (needs the network the first time): the broker's jars."""
        return ensure_libs()

    def prepare(self) -> None:
        """Jars once, config on every start (the bridge may have appeared), format once."""
        self.fetch()
        self.area.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self._config())
        if not (self.storage_dir / "meta.properties").exists():
            self._format()

    def _config(self) -> str:
        p = self.profile.ports
        listeners = {"HOST": f"127.0.0.1:{p.kafka}"}
        bridge_ip = bridge_ip_if_present(self.profile)
        if bridge_ip:
            listeners["BRIDGE"] = f"{bridge_ip}:{p.kafka_bridge}"
        advertised = ",".join(f"{name}://{addr}" for name, addr in listeners.items())
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{p.kafka_controller}",
            "listeners": f"{advertised},CONTROLLER://127.0.0.1:{p.kafka_controller}",
            "advertised.listeners": advertised,
            "listener.security.protocol.map": ",".join(
                f"{name}:PLAINTEXT" for name in ("HOST", "BRIDGE", "CONTROLLER")
            ),
            "inter.broker.listener.name": "HOST",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(self.storage_dir),
            # One node: every internal topic has exactly one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            # Topics are created on purpose (after_start); a typo must not create one.
            "auto.create.topics.enable": "false",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.retention.hours": "168",
            # Consumers (tests, the connector) join at once instead of waiting 3 s for others.
            "group.initial.rebalance.delay.ms": "0",
        }
        lines = ["# Generated by localplatform (components/kafka.py) on every start; do not edit."]
        return "\n".join(lines + [f"{k}={v}" for k, v in settings.items()]) + "\n"

    def requires(self) -> tuple[str, ...]:
        """Java to run the broker; Maven too while its jars are not resolved yet."""
        return ("java",) if libs_dir().is_dir() else ("java", "mvn")

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [require("java"), *JVM_OPTIONS, "-cp", f"{libs_dir()}/*", main_class, *args]

    def _format(self) -> None:
        """Format the storage once; the cluster id is kept so a re-format would match it."""
        id_file = self.area / "cluster-id"
        if not id_file.exists():
            id_file.write_text(_new_cluster_id() + "\n")
        argv = self._java("kafka.tools.StorageTool", "format", "-c", str(self.config_path))
        argv += ["-t", id_file.read_text().strip(), "-g"]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=self.area)
        if done.returncode != 0:
            raise ComponentError(f"kafka: formatting storage failed:\n{done.stdout}{done.stderr}")

    def command(self) -> Command:
        return Command(self._java("kafka.Kafka", str(self.config_path)), cwd=self.area)

    def healthy(self) -> bool:
        # A plain TCP probe first: librdkafka would log every refused connection.
        try:
            socket.create_connection(("127.0.0.1", self.profile.ports.kafka), timeout=1).close()
        except OSError:
            return False
        try:
            metadata = self.admin().list_topics(timeout=5)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def address(self) -> str:
        return self.bootstrap

    def admin(self) -> AdminClient:
        """An admin client on loopback. Quiet: its failures surface as exceptions, and a client
        left over from a health check would otherwise log every broker restart."""
        # (The client's stubs allow only scalar values; error_cb is a documented callback.)
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "log_level": 0,
            "error_cb": _ignore,
        }
        return AdminClient(config)

    def after_start(self) -> None:
        """Create the platform's topics; existing ones are left as they are."""
        admin = self.admin()
        pending = dict(TOPICS)
        deadline = time.monotonic() + 30
        while pending:
            new = [
                NewTopic(t, n, replication_factor=1, config=_TOPIC_CONFIGS.get(t, {}))
                for t, n in pending.items()
            ]
            for topic, future in admin.create_topics(new, request_timeout=15).items():
                try:
                    future.result()
                except KafkaException as exc:
                    err: KafkaError = exc.args[0]
                    if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                        pass
                    elif err.retriable() and time.monotonic() < deadline:
                        continue  # e.g. the controller is still settling: try again
                    else:
                        raise ComponentError(f"kafka: creating {topic} failed: {err}") from exc
                pending.pop(topic)
            if pending:
                time.sleep(0.5)
