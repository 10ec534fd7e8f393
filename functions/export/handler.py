"""export: log-level data - every closed UTC hour of impressions and clicks, as files in S3.

A thread of every replica exports every `EXPORT_INTERVAL_S` (0: only on request); the work is
in shared_layer.export.service.log_export. With ``Authorization: Bearer <campaigns-admin-token>``:
``GET /status`` (hours exported, failed, pending; lag per type), ``POST /run`` (export now,
starting hours for RUN_SECONDS). At start the bucket is checked: no such bucket or refused
credentials stop the replica with the reason; an unreachable endpoint keeps it not ready.
"""

from __future__ import annotations

from datetime import date, timedelta

from aws_lambda_powertools import Logger

from shared_layer.export.service.log_export import LogExport, start_schedule
from shared_layer.export.store.export_ledger import ExportLedger
from shared_layer.export.store.object_bucket import Bucket, BucketConfig
from shared_layer.kernel.clock import utc_now
from shared_layer.kernel.http import Request, Router, json_response, require_bearer
from shared_layer.kernel.settings import (
    at_least,
    ends_with,
    env,
    iso_date,
    load_settings,
    min_length,
    positive,
    secret,
    settings_class,
)
from shared_layer.kernel.storage.postgres import Database


@settings_class
class ExportSettings:
    database_url: str = env("DATABASE_URL")
    postgres_password: str | None = secret("postgres-password", default=None)
    admin_token: bytes = secret("campaigns-admin-token", check=min_length(16))
    endpoint_url: str | None = env("S3_ENDPOINT_URL", default=None)  # unset: AWS
    bucket: str = env("EXPORT_BUCKET", default="ads-log-export", check=min_length(3))
    prefix: str = env("EXPORT_PREFIX", default="", check=ends_with("/"))
    region: str = env("EXPORT_REGION", default="us-east-1", check=min_length(1))
    access_key_id: str = secret("export-s3-access-key-id", check=min_length(1))
    secret_access_key: str = secret("export-s3-secret-access-key", check=min_length(1))
    interval_s: float = env("EXPORT_INTERVAL_S", default=60.0, check=at_least(0))
    grace_s: int = env("EXPORT_GRACE_S", default=600, check=at_least(0))
    records_per_part: int = env("EXPORT_RECORDS_PER_PART", default=250_000, check=positive)
    since: str | None = env("EXPORT_SINCE", default=None, check=iso_date)  # first day exported


SETTINGS = load_settings(ExportSettings)
RUN_SECONDS = 3.0  # POST /run starts no hour after this: a call ends well within any timeout
CLOCK = utc_now  # tests replace it
LOGGER = Logger(service="export")
BUCKET = Bucket(
    BucketConfig(
        endpoint_url=SETTINGS.endpoint_url,
        bucket=SETTINGS.bucket,
        region=SETTINGS.region,
        access_key_id=SETTINGS.access_key_id,
        secret_access_key=SETTINGS.secret_access_key,
    )
)
EXPORT = LogExport(
    ExportLedger(Database.from_url(SETTINGS.database_url, password=SETTINGS.postgres_password)),
    BUCKET,
    prefix=SETTINGS.prefix,
    records_per_part=SETTINGS.records_per_part,
    grace=timedelta(seconds=SETTINGS.grace_s),
    since=date.fromisoformat(SETTINGS.since) if SETTINGS.since else None,
)
# No such bucket or refused credentials raise here (module docstring); an outage is logged.
UNREACHABLE = EXPORT.check_bucket()
if UNREACHABLE:
    LOGGER.error("bucket unreachable at start", extra={"error": UNREACHABLE})
if SETTINGS.interval_s > 0:
    start_schedule(EXPORT, lambda: CLOCK(), interval_s=SETTINGS.interval_s, logger=LOGGER)
router = Router()


def ready() -> bool:
    return EXPORT.bucket_ok or EXPORT.check_bucket() is None


@router.route("GET", "/status")
def status(request: Request) -> dict:
    require_bearer(request, SETTINGS.admin_token, "export")
    return json_response(200, EXPORT.status(CLOCK()), request)


@router.route("POST", "/run")
def run(request: Request) -> dict:
    require_bearer(request, SETTINGS.admin_token, "export")
    report = EXPORT.run(CLOCK(), within_s=RUN_SECONDS)
    return json_response(200, report.to_json(), request)


handle = router.handler(service="export")
