"""Helpers of the log-level export tests: the bucket and the events of an hour as they are.

Run as a module, it is an exporter that stops dead in the middle of an hour: after writing
`--parts` objects with records it creates `--marker` and hangs, so that the test can SIGKILL
it there::

    python -m tests.integration.log_export_support --prefix p/ --since 2026-11-13 \
        --now 2026-11-13T08:20:00+00:00 --parts 3 --per-part 20 --marker /tmp/x
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from localplatform.components.s3 import BUCKET, REGION
from localplatform.profile import PROFILES
from shared_layer.export.domain.log_export import ExportHour
from shared_layer.export.service.log_export import LogExport
from shared_layer.export.store.export_ledger import ExportLedger
from shared_layer.export.store.object_bucket import Bucket, BucketConfig
from shared_layer.kernel.storage.postgres import Database

from .campaign_support import database

PROFILE = PROFILES[os.environ.get("ADS_PROFILE", "test")]
GRACE = timedelta(minutes=10)


def bucket(**overrides: object) -> Bucket:
    fields: dict[str, object] = {
        "endpoint_url": PROFILE.host_env()["S3_ENDPOINT_URL"],
        "bucket": BUCKET,
        "region": REGION,
        "access_key_id": "test",
        "secret_access_key": "test",
        "connect_timeout_s": 1.0,
        "read_timeout_s": 2.0,
        "attempts": 1,
    }
    fields.update(overrides)
    return Bucket(BucketConfig(**fields))  # type: ignore[arg-type]


def exporter(db: Database, target: Bucket, prefix: str, since: date, per_part: int) -> LogExport:
    return LogExport(
        ExportLedger(db), target, prefix=prefix, records_per_part=per_part, grace=GRACE, since=since
    )


def forget_exports(db: Database, day: date) -> None:
    """Another run of the suite may have exported this day: start from nothing."""
    db.run(
        "DELETE FROM log_export_hours WHERE hour >= CAST(:d AS timestamp) "
        "AND hour < CAST(:d AS timestamp) + interval '1 day'",
        d=day.isoformat(),
    )


def logged_ids(db: Database, hour: ExportHour) -> list[str]:
    rows = db.run(
        "SELECT CAST(event_id AS text) FROM events_log WHERE day = CAST(:day AS date) "
        "AND event_type = :t AND timestamp >= CAST(:s AS timestamp) "
        "AND timestamp < CAST(:e AS timestamp)",
        day=hour.start.date().isoformat(),
        t=hour.event_type,
        s=hour.start.replace(tzinfo=None).isoformat(),
        e=hour.end.replace(tzinfo=None).isoformat(),
    )
    return sorted(r[0] for r in rows)


def exported_ids(target: Bucket, prefix: str, hour: ExportHour) -> list[str]:
    """The hour's event ids as a consumer reads them: the manifest, then only what it lists,
    each object checked against the manifest's count and checksum. Fails on any mismatch."""
    manifest = json.loads(target.get(hour.manifest_key(prefix)))
    ids: list[str] = []
    for entry in manifest["objects"]:
        body = target.get(entry["key"])
        assert len(body) == entry["bytes"]
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        lines = gzip.decompress(body).splitlines()
        assert len(lines) == entry["records"]
        ids.extend(json.loads(line)["eventId"] for line in lines)
    assert len(ids) == manifest["records"]
    unlisted = set(target.keys(hour.folder(prefix))) - {o["key"] for o in manifest["objects"]}
    assert unlisted == {hour.manifest_key(prefix)}, unlisted
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates, duplicates
    return sorted(ids)


def _hang_after(target: Bucket, parts: int, marker: Path) -> None:
    put = target.put_verified
    written = 0

    def put_then_maybe_hang(key: str, body: bytes, **kwargs: str) -> None:
        nonlocal written
        put(key, body, **kwargs)
        written += key.endswith(".json.gz")  # objects with records, not manifests
        if written == parts:
            marker.write_text(key)
            while True:  # the test SIGKILLs us here, mid-hour, the hour's lock held
                time.sleep(60)

    target.put_verified = put_then_maybe_hang  # type: ignore[method-assign]


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--prefix", required=True)
    args.add_argument("--since", type=date.fromisoformat, required=True)
    args.add_argument("--now", type=datetime.fromisoformat, required=True)
    args.add_argument("--parts", type=int, required=True)
    args.add_argument("--per-part", type=int, required=True)
    args.add_argument("--marker", type=Path, required=True)
    given = args.parse_args()
    target = bucket()
    _hang_after(target, given.parts, given.marker)
    export = exporter(database(), target, given.prefix, given.since, given.per_part)
    export.run(given.now.astimezone(UTC))


if __name__ == "__main__":
    main()
