"""The backing services, started for real, checked for what the platform relies on.

Each component runs as `make up` runs it (prepare, start, health check, after_start), but
under a throwaway profile: a state directory in pytest's tmp dir and free high ports, so a
running `make up` or another test session on this machine is never touched. Nothing
network-wide is created: the profile's bridge does not exist, so services bind loopback only;
the one test of the bridge side runs in a private network namespace that vanishes with it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml
from confluent_kafka import Consumer, Producer

from localplatform import migrations
from localplatform.component import Component
from localplatform.components.kafka import TOPICS, Kafka
from localplatform.components.postgres import PASSWORD_SECRET, Postgres, connect
from localplatform.components.prometheus import Prometheus
from localplatform.components.redis import Redis
from localplatform.profile import TEST, Ports, Profile

SEED_TABLES = {"campaigns", "campaign_targeting_rules", "ads", "daily_metrics", "events_log"}


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _let_postgres_enter(path: Path) -> None:
    """pytest makes its tmp dirs private (0700); PostgreSQL runs as `postgres` and must pass."""
    for d in [path, *path.parents]:
        st = d.stat()
        if st.st_uid == os.getuid() and not st.st_mode & stat.S_IXOTH:
            d.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def _throwaway_profile(state_dir: Path) -> Profile:
    names = [f.name for f in dataclasses.fields(Ports)]
    return dataclasses.replace(
        TEST,
        name="backing-test",
        state_dir=state_dir,
        # An address range no interface here has: the bridge is absent, as in CI.
        bridge="bst0",
        bridge_cidr="198.18.251.0/24",
        netns_prefix="bst-",
        host_netns=None,
        ports=Ports(**dict(zip(names, _free_ports(len(names)), strict=True))),
    )


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Profile:
    state_dir = tmp_path_factory.mktemp("backing")
    _let_postgres_enter(state_dir)
    profile = _throwaway_profile(state_dir)
    profile.ensure_dirs()
    return profile


@contextmanager
def running(component: Component) -> Iterator[Component]:
    """Start as `make up` does; always stop, even when the test fails."""
    try:
        component.prepare()
        component.start()
        component.wait_healthy()
        component.after_start()
        yield component
    finally:
        component.stop()


def _eventually(check: Callable[[], object], timeout_s: float = 30.0) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


# PostgreSQL


def test_postgres_in_a_private_checkout_keeps_its_data_outside_and_purges_it(
    tmp_path: Path,
) -> None:
    # A checkout under a private directory (a home with mode 0700) cannot be entered by the
    # `postgres` user: the data area moves out of the tree, behind a symlink, and still works.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    profile = _throwaway_profile(private / "state")
    profile.ensure_dirs()
    postgres = Postgres(profile)
    try:
        postgres.prepare()
        link = profile.data_dir / "postgres"
        assert link.is_symlink() and postgres.area == link.resolve()
        assert not str(postgres.area).startswith(str(private))
        postgres.start()
        postgres.wait_healthy()
        postgres.after_start()
        assert postgres.healthy()
    finally:
        postgres.stop()
        target = postgres.area
        postgres.purge()
    assert not target.exists() and not (profile.data_dir / "postgres").exists()


def test_postgres_applies_migrations_once_and_keeps_data_across_restarts(
    profile: Profile,
) -> None:
    postgres = Postgres(profile)
    all_files = [m.file_name for m in migrations.discover()]
    advertiser = str(uuid.uuid4())

    with running(postgres):
        conn = connect(profile)
        applied = conn.run("SELECT name, applied_at FROM schema_migrations ORDER BY version")
        assert [name for name, _ in applied] == all_files
        tables = conn.run(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert SEED_TABLES <= {t for (t,) in tables}
        assert migrations.apply(conn) == []  # a re-run is harmless
        conn.run(
            "INSERT INTO campaigns (name, advertiser_id, cpm_bid, daily_budget)"
            " VALUES ('restart survivor', CAST(:a AS uuid), 2.5, 100)",
            a=advertiser,
        )
        conn.close()

    # What users rely on around the cluster: private data, private secret, no socket in /run.
    area = profile.data_dir / "postgres"
    assert area.stat().st_uid == pwd.getpwnam("postgres").pw_uid
    assert stat.S_IMODE(area.stat().st_mode) == 0o700
    assert stat.S_IMODE((profile.secrets_dir / PASSWORD_SECRET).stat().st_mode) == 0o600

    with running(postgres):  # second start: prepare and after_start again, same data
        assert (area / "sockets" / f".s.PGSQL.{profile.ports.postgres}").is_socket()
        conn = connect(profile)
        assert (
            conn.run("SELECT name, applied_at FROM schema_migrations ORDER BY version") == applied
        )
        rows = conn.run(
            "SELECT name FROM campaigns WHERE advertiser_id = CAST(:a AS uuid)", a=advertiser
        )
        assert rows == [["restart survivor"]]
        conn.close()


def test_migration_runner_refuses_changed_or_missing_history_and_rolls_back_failures(
    profile: Profile, tmp_path: Path
) -> None:
    # A private copy of the migrations, applied into a scratch schema of the running database.
    directory = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, directory)
    first = sorted(directory.glob("0001_*.sql"))[0]
    with running(Postgres(profile)):
        conn = connect(profile)
        conn.run("CREATE SCHEMA scratch")
        conn.run("SET search_path TO scratch")
        try:
            assert migrations.apply(conn, directory) == sorted(p.name for p in directory.iterdir())
            assert migrations.apply(conn, directory) == []

            original = first.read_text()
            first.write_text(original + "\n-- edited after it was applied\n")
            with pytest.raises(migrations.MigrationError, match=f"{first.name} changed"):
                migrations.apply(conn, directory)
            first.write_text(original)

            # A database that applied the earlier wording of a reworded file (REWORDED) is
            # accepted, and its record brought up to the current wording; a statement changed
            # under that earlier checksum is still refused.
            earlier = migrations.REWORDED[1].earlier
            conn.run("UPDATE schema_migrations SET checksum = :c WHERE version = 1", c=earlier)
            assert migrations.apply(conn, directory) == []
            recorded = conn.run("SELECT checksum FROM schema_migrations WHERE version = 1")
            assert recorded == [[migrations.discover(directory)[0].checksum]]
            conn.run("UPDATE schema_migrations SET checksum = :c WHERE version = 1", c=earlier)
            first.write_text(original.replace("VARCHAR(255)", "VARCHAR(256)", 1))
            with pytest.raises(migrations.MigrationError, match=f"{first.name} changed"):
                migrations.apply(conn, directory)
            first.write_text(original)
            assert migrations.apply(conn, directory) == []

            broken = directory / "0900_broken.sql"
            broken.write_text("CREATE TABLE half_done (id int);\nSELECT no_such_function();\n")
            with pytest.raises(migrations.MigrationError, match=r"0900_broken\.sql failed"):
                migrations.apply(conn, directory)
            assert conn.run("SELECT to_regclass('scratch.half_done')") == [[None]]
            assert conn.run("SELECT count(*) FROM schema_migrations WHERE version = 900") == [[0]]

            broken.write_text("CREATE TABLE whole (id int);\n")
            assert migrations.apply(conn, directory) == ["0900_broken.sql"]
            broken.unlink()
            with pytest.raises(migrations.MigrationError, match="file is missing"):
                migrations.apply(conn, directory)
        finally:
            conn.run("RESET search_path")
            conn.run("DROP SCHEMA scratch CASCADE")
            conn.close()


# Redis


def test_redis_appends_every_write_and_keeps_it_after_a_crash(profile: Profile) -> None:
    redis = Redis(profile)
    with running(redis):
        client = redis.client(decode_responses=True)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
        client.set("budget:test:spent", 2500)
        time.sleep(1.5)  # appendfsync everysec: on disk within a second
        # A crash, not a shutdown: no final save, only the append-only file can bring it back.
        pid = redis.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert _eventually(lambda: not redis.running(), 10)
        client.close()

    with running(redis):
        client = redis.client(decode_responses=True)
        assert client.get("budget:test:spent") == "2500"
        client.close()


# Kafka


def test_kafka_has_the_platform_topics_and_delivers_a_record(profile: Profile) -> None:
    kafka = Kafka(profile)
    key = str(uuid.uuid4())
    with running(kafka):
        kafka.after_start()  # a second run finds the topics and is harmless
        topics = kafka.admin().list_topics(timeout=10).topics
        for topic, partitions in TOPICS.items():
            assert len(topics[topic].partitions) == partitions
        assert len(topics["impressions"].partitions) >= 10
        assert len(topics["clicks"].partitions) >= 10

        producer = Producer({"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True})
        producer.produce("impressions", key=key, value=json.dumps({"eventId": key}))
        assert producer.flush(15) == 0
        assert _consume_one(kafka.bootstrap, key) == {"eventId": key}

    with running(kafka):  # a restart keeps topics and records
        assert _consume_one(kafka.bootstrap, key) == {"eventId": key}


def _consume_one(bootstrap: str, key: str) -> dict | None:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe(["impressions"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.key() == key.encode():
                return json.loads(msg.value())
        return None
    finally:
        consumer.close()


# Prometheus


def test_prometheus_scrapes_itself_and_knows_every_platform_job(profile: Profile) -> None:
    prometheus = Prometheus(profile)
    with running(prometheus):
        config = yaml.safe_load(prometheus.config_path.read_text())
        assert config["global"]["scrape_interval"] == "5s"
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        sd_url = jobs["functions"]["http_sd_configs"][0]["url"]
        assert sd_url == f"http://127.0.0.1:{profile.ports.provider_ops}/sd"

        def self_scraped() -> bool:
            r = requests.get(
                f"{prometheus.url}/api/v1/query",
                params={"query": 'up{job="prometheus"}'},
                timeout=5,
            )
            result = r.json()["data"]["result"]
            return bool(result) and result[0]["value"][1] == "1"

        assert _eventually(self_scraped, 20)
        targets = requests.get(f"{prometheus.url}/api/v1/targets", timeout=5).json()
        scraped = {t["labels"]["job"] for t in targets["data"]["activeTargets"]}
        assert {"prometheus", "gateway", "provider"} <= scraped  # not running here: down, listed


# The bridge side, as function replicas see it


_ON_A_BRIDGE = textwrap.dedent(
    """
    import dataclasses, json, sys
    from pathlib import Path
    import pg8000.native, redis
    from confluent_kafka.admin import AdminClient
    from localplatform.profile import TEST
    from localplatform.components.kafka import Kafka
    from localplatform.components.postgres import Postgres, password
    from localplatform.components.redis import Redis

    profile = dataclasses.replace(
        TEST, state_dir=Path(sys.argv[1]), bridge="bst0", bridge_cidr="10.99.0.0/16",
        host_netns=None,
    )
    profile.ensure_dirs()
    ip, ports = profile.bridge_ip, profile.ports
    started, seen = [], {}
    try:
        for component in (Postgres(profile), Redis(profile), Kafka(profile)):
            started.append(component)
            component.prepare()
            component.start()
            component.wait_healthy()
            component.after_start()
        pg = pg8000.native.Connection(
            "adserver", host=ip, port=ports.postgres, password=password(profile),
            database="adserver",
        )
        seen["postgres"] = pg.run("SELECT count(*) > 0 FROM schema_migrations")[0][0]
        pg.close()
        seen["redis"] = redis.Redis(host=ip, port=ports.redis).ping()
        md = AdminClient({"bootstrap.servers": f"{ip}:{ports.kafka_bridge}", "log_level": 0})
        md = md.list_topics(timeout=10)
        seen["kafka"] = [str(b) for b in md.brokers.values()]
    finally:
        for component in reversed(started):
            component.stop()
    print(json.dumps(seen))
    """
)


def test_services_also_listen_on_the_bridge_when_it_exists(tmp_path: Path) -> None:
    """In a private network namespace with a bridge of its own, the way replicas connect."""
    state_dir = tmp_path / "bridge"
    state_dir.mkdir()
    _let_postgres_enter(state_dir)
    setup = "ip link set lo up && ip link add bst0 type bridge"
    setup += " && ip addr add 10.99.0.1/16 dev bst0 && ip link set bst0 up"
    # sh runs the setup, then execs python "$0" -c <script> <state dir> in the same namespace.
    shell = f'{setup} && exec "$0" -c "$1" "$2"'
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", shell, sys.executable, _ON_A_BRIDGE, str(state_dir)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # Kafka hands replicas the BRIDGE listener's address, not 127.0.0.1.
    kafka = f"10.99.0.1:{Ports().kafka_bridge}/1"
    assert seen == {"postgres": True, "redis": True, "kafka": [kafka]}
