"""Log-level export against the test platform's PostgreSQL and its S3 bucket (moto's server).

Proven, with the clock injected: impressions and clicks counted into events_log across several
hours (a redelivered batch among them) are exported through the export function (POST /run)
so that every record of each hour appears exactly once in its objects, the manifests list every
object with its count and checksum, and match events_log; a second run writes nothing. An
exporter SIGKILLed in the middle of an hour, followed by the bucket being stopped for 20 s,
leaves no hole and no duplicate after recovery, and the failure shows in the status. Retention
keeps an expired day that is not exported (and says why), drops it once it is, and keeps it
again when an event arrived after the export, until that hour is written again. Bad settings
(unknown bucket, refused credentials, unreachable endpoint) fail at start with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

from localplatform.components.s3 import BUCKET, S3
from localplatform.profile import REPO_ROOT
from shared_layer.campaigns.store.campaigns import CampaignStore
from shared_layer.composition.export import ExportSettings, start_export
from shared_layer.export.domain.log_export import EVENT_TYPES, ExportHour
from shared_layer.export.store.object_bucket import BucketMisconfigured
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.errors import UpstreamUnavailable
from shared_layer.kernel.models import Campaign
from shared_layer.kernel.settings import load_settings
from shared_layer.kernel.storage.postgres import Database
from shared_layer.pipeline.domain.events import AdEvent
from shared_layer.pipeline.store.daily_metrics import DailyMetrics
from tests.support import free_port, wait_for

from .campaign_support import campaign_request, new_id
from .log_export_support import (
    GRACE,
    PROFILE,
    bucket,
    exported_ids,
    exporter,
    forget_exports,
    logged_ids,
)
from .test_daily_metrics_handler import load_function

TODAY = datetime.now(UTC).date()
LOAD_DAY = TODAY - timedelta(days=20)  # inside the retention window, untouched by other tests
CRASH_DAY = TODAY - timedelta(days=19)
EXPIRING_DAY = TODAY - timedelta(days=25)
RETENTION_DAYS = 30
OUTAGE_S = 20.0


@pytest.fixture(scope="module")
def campaign(db: Database) -> Campaign:
    made = campaign_request(new_id()).to_campaign(status="paused")
    return CampaignStore(db).create(made).campaign


@pytest.fixture(scope="module")
def counter(db: Database) -> DailyMetrics:
    return DailyMetrics(db, retention_days=RETENTION_DAYS)


def at(day: date, hour: int, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(seconds=second)


def events(c: Campaign, start: datetime, impressions: int, clicks: int) -> list[AdEvent]:
    shown = [
        AdEvent.impression(
            impression_id=str(uuid.uuid4()),
            campaign_id=c.id,
            ad_id=c.ads[0].id,
            user_id=f"user-{n}",
            placement_id="placement-export",
            bid_cpm_micros=2_000_000,
            price_micros=2_000,
            country="DE",
            device_type="desktop",
            at=start + timedelta(seconds=n * 3599 // max(impressions, 1)),
        )
        for n in range(impressions)
    ]
    clicked = [
        AdEvent.click(
            impression_id=i.impression_id,
            campaign_id=c.id,
            ad_id=c.ads[0].id,
            user_id=i.user_id,
            placement_id=i.placement_id,
            at=i.timestamp + timedelta(milliseconds=500),
        )
        for i in shown[:clicks]
    ]
    return shown + clicked


def hours_of(day: date, hours: range) -> list[ExportHour]:
    return [ExportHour(t, at(day, h)) for h in hours for t in EVENT_TYPES]


def assert_exactly_once(db: Database, target, prefix: str, hours: list[ExportHour]) -> int:
    total = 0
    for hour in hours:
        assert exported_ids(target, prefix, hour) == logged_ids(db, hour), hour.label()
        total += len(logged_ids(db, hour))
    return total


def call(function, method: str, path: str) -> tuple[int, dict]:
    token = (PROFILE.secrets_dir / "campaigns-admin-token").read_text().strip()
    event = SimpleNamespace(
        body=b"", headers={"Authorization": f"Bearer {token}"}, method=method, query={}, path=path
    )
    response = function.handle(event, None)
    return response["statusCode"], json.loads(response["body"])


def export_function(clock: Clock = utc_now, **env: str) -> SimpleNamespace:
    """The export function's handler, wired as its build() wires it, with this platform's
    settings and `env` over them; `export` is its LogExport (its bucket, its readiness)."""
    module = load_function("export")
    environ = {**PROFILE.host_env(), "EXPORT_BUCKET": BUCKET, "EXPORT_INTERVAL_S": "0", **env}
    settings = load_settings(ExportSettings, environ=environ, secrets_dir=PROFILE.secrets_dir)
    export = start_export(settings, clock=clock, logger=module.LOGGER)
    handle = module.serve_export(export, settings.admin_token, clock)
    return SimpleNamespace(handle=handle, export=export)


def test_every_record_of_every_hour_is_exported_exactly_once(db, counter, campaign):
    forget_exports(db, LOAD_DAY)
    load = {0: (120, 9), 1: (0, 0), 2: (75, 30), 3: (41, 2)}  # hour: (impressions, clicks)
    for hour, (shown, clicked) in load.items():
        batch = events(campaign, at(LOAD_DAY, hour), shown, clicked)
        assert counter.count(batch, today=TODAY).counted == len(batch)
        assert counter.count(batch[: len(batch) // 2], today=TODAY).counted == 0  # redelivered
    prefix = f"test-{uuid.uuid4()}/"
    function = export_function(
        lambda: at(LOAD_DAY, 4) + GRACE,  # 00:00-04:00 are closed, 04:00 is not
        EXPORT_PREFIX=prefix,
        EXPORT_SINCE=LOAD_DAY.isoformat(),
        EXPORT_RECORDS_PER_PART="50",
    )

    exported = []
    while True:  # a call starts hours for a few seconds: call again until nothing is left
        status, report = call(function, "POST", "/run")
        assert status == 200 and report["failed"] == []
        exported += report["exported"]
        if report["pendingBefore"] == len(report["exported"]):
            break

    assert len(exported) == 8
    hours = hours_of(LOAD_DAY, range(4))
    assert assert_exactly_once(db, function.export.bucket, prefix, hours) >= sum(
        s + c for s, c in load.values()
    )
    first = json.loads(function.export.bucket.get(hours[0].manifest_key(prefix)))
    assert len(first["objects"]) >= 3  # 120 impressions, 50 per object
    status, again = call(function, "POST", "/run")
    assert (status, again["exported"], again["pendingBefore"]) == (200, [], 0)
    status, state = call(function, "GET", "/status")
    assert status == 200 and state["pending"] == [] and state["failed"] == []
    assert {(h["eventType"], h["hour"], h["records"]) for h in state["exported"]} == {
        (h.event_type, h.start.strftime("%Y-%m-%dT%H:00:00Z"), len(logged_ids(db, h)))
        for h in hours
    }
    assert state["lagHours"] == {"impression": 0.0, "click": 0.0}


def test_a_killed_exporter_and_a_bucket_outage_leave_no_hole_and_no_duplicate(
    db, counter, campaign, tmp_path
):
    forget_exports(db, CRASH_DAY)
    for hour, shown in ((5, 200), (6, 60)):
        counter.count(events(campaign, at(CRASH_DAY, hour), shown, shown // 2), today=TODAY)
    prefix = f"test-{uuid.uuid4()}/"
    now = at(CRASH_DAY, 7) + GRACE
    hours = hours_of(CRASH_DAY, range(5, 7))
    target = bucket()
    marker = tmp_path / "hanging"
    crashing = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.log_export_support", "--prefix", prefix,
         "--since", CRASH_DAY.isoformat(), "--now", now.isoformat(),
         "--parts", "3", "--per-part", "20", "--marker", str(marker)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'infra' / 'local'}"},
    )  # fmt: skip
    try:
        wait_for(lambda: marker.exists() or crashing.poll() is not None, timeout_s=120)
        assert crashing.poll() is None, "the exporter ended before it was killed"
        crashing.send_signal(signal.SIGKILL)
        crashing.wait()
    finally:
        if crashing.poll() is None:
            crashing.kill()
    # Killed mid-hour: the empty hours 00-04 have their manifests, the first hour with events
    # (05, clicks come first) three of its five objects and no manifest; its lock went with the
    # killed process' connection.
    killed = ExportHour("click", at(CRASH_DAY, 5))
    assert marker.read_text().startswith(killed.folder(prefix))
    assert set(target.keys(killed.folder(prefix))) == {killed.part_key(prefix, n) for n in range(3)}
    assert wait_for(lambda: not _export_locks_held(db), timeout_s=30)
    export = exporter(db, target, prefix, CRASH_DAY, per_part=20)

    s3 = S3(PROFILE)
    s3.pause()
    stopped = time.monotonic()
    try:
        report = export.run(now)
        assert report.exported == () and len(report.failed) == 1
        assert "cannot" in report.failed[0][1] or "failed" in report.failed[0][1]
        state = export.status(now)
        assert [f["hour"] for f in state["failed"]] == [f"{CRASH_DAY.isoformat()}T05:00:00Z"]
        assert state["failed"][0]["lastError"]
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
    finally:
        s3.resume()

    report = export.run(now)
    assert report.failed == () and export.run(now).pending_before == 0
    assert assert_exactly_once(db, target, prefix, hours) == sum(
        len(logged_ids(db, h)) for h in hours
    )
    assert export.status(now)["failed"] == []


def _export_locks_held(db: Database) -> bool:
    rows = db.run(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = :c",
        c=1280263000,
    )
    return rows[0][0] > 0


def partitions(db: Database) -> set[date]:
    rows = db.run(
        "SELECT to_date(substr(c.relname, 12), 'YYYYMMDD') FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST('events_log' AS regclass)"
    )
    return {r[0] for r in rows}


def test_retention_keeps_a_day_until_it_is_exported_and_verified(db, counter, campaign):
    forget_exports(db, EXPIRING_DAY)
    counter.count(events(campaign, at(EXPIRING_DAY, 2), 30, 5), today=TODAY)
    later = TODAY + timedelta(days=6)  # EXPIRING_DAY is past the retention then
    export = exporter(db, bucket(), f"test-{uuid.uuid4()}/", EXPIRING_DAY, per_part=1000)
    whole_day = at(EXPIRING_DAY, 0) + timedelta(days=1) + GRACE
    try:
        report = counter.maintain(later)
        [reason] = [why for day, why in report.kept if day == EXPIRING_DAY]
        assert "not exported yet" in reason and "30 in events_log" in reason
        assert EXPIRING_DAY in partitions(db)

        assert export.run(whole_day).failed == ()
        late = events(campaign, at(EXPIRING_DAY, 2, 1800), 1, 0)  # arrives after the export
        counter.count(late, today=TODAY)
        report = counter.maintain(later)
        [reason] = [why for day, why in report.kept if day == EXPIRING_DAY]
        assert "31 in events_log, 30 in its manifest" in reason
        assert [f["eventType"] for f in export.status(whole_day)["failed"]] == ["impression"]

        assert export.run(whole_day).failed == ()
        report = counter.maintain(later)
        assert EXPIRING_DAY in report.dropped and EXPIRING_DAY not in partitions(db)
    finally:
        counter.maintain(TODAY)  # the window of today again (empty partitions come back)


def test_an_unknown_bucket_fails_at_start_with_the_reason():
    with pytest.raises(
        BucketMisconfigured, match=r"bucket 'no-such-bucket-here' .* does not exist"
    ):
        export_function(EXPORT_BUCKET="no-such-bucket-here")


def test_an_unreachable_endpoint_keeps_the_function_not_ready_with_the_reason():
    url = f"http://127.0.0.1:{free_port()}"
    function = export_function(S3_ENDPOINT_URL=url)
    reason = function.export.check_bucket()
    assert "cannot be reached" in reason and url in reason
    assert function.handle.ready() is False
    with pytest.raises(UpstreamUnavailable, match="cannot be reached"):
        function.export.bucket.check()


def test_refused_credentials_fail_at_start_with_the_reason(tmp_path: Path):
    """A moto server of this test's own that checks credentials (IAM), unlike the platform's."""
    port = free_port()
    server = subprocess.Popen(
        [str(REPO_ROOT / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        iam = boto3.client(
            "iam", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id="setup", aws_secret_access_key="setup",  # noqa: S106
        )  # fmt: skip
        assert wait_for(lambda: _answers(iam), timeout_s=30)
        iam.create_user(UserName="exporter")
        key = iam.create_access_key(UserName="exporter")["AccessKey"]
        iam.put_user_policy(
            UserName="exporter",
            PolicyName="all",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17",
                 "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )  # fmt: skip
        good = {"endpoint_url": url, "access_key_id": key["AccessKeyId"]}
        bucket(**good, secret_access_key=key["SecretAccessKey"])._s3.create_bucket(Bucket=BUCKET)
        bucket(**good, secret_access_key=key["SecretAccessKey"]).check()  # the right key works
        with pytest.raises(BucketMisconfigured, match="credentials were refused"):
            bucket(**good, secret_access_key="wrong").check()  # noqa: S106
    finally:
        server.kill()
        server.wait()


def _answers(iam) -> bool:
    """Whether the server is up, without spending one of its unauthenticated calls."""
    try:
        return iam.meta.endpoint_url and _tcp_open(iam.meta.endpoint_url)
    except OSError:
        return False


def _tcp_open(url: str) -> bool:
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=0.5):
        return True
