"""What the export function starts with: its settings, the bucket (checked), the export ledger in
PostgreSQL and, unless `EXPORT_INTERVAL_S` is 0, the thread that exports on a schedule.

Example::

    export = start_export(load_settings(ExportSettings), clock=utc_now, logger=logger)
"""

from __future__ import annotations

from datetime import date, timedelta

from aws_lambda_powertools import Logger

from shared_layer.export.service.log_export import LogExport, start_schedule
from shared_layer.export.store.export_ledger import ExportLedger
from shared_layer.export.store.object_bucket import Bucket, BucketConfig
from shared_layer.kernel.clock import Clock
from shared_layer.kernel.settings import (
    at_least,
    ends_with,
    env,
    iso_date,
    min_length,
    positive,
    secret,
    settings_class,
)
from shared_layer.kernel.storage.settings import PostgresSettings

__all__ = ["ExportSettings", "start_export"]


@settings_class
class ExportSettings(PostgresSettings):
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


def start_export(settings: ExportSettings, *, clock: Clock, logger: Logger) -> LogExport:
    """Check the bucket and start the schedule. No such bucket or refused credentials raise
    (`BucketMisconfigured`); an unreachable endpoint is logged and leaves `bucket_ok` False."""
    bucket = Bucket(
        BucketConfig(
            endpoint_url=settings.endpoint_url,
            bucket=settings.bucket,
            region=settings.region,
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key,
        )
    )
    database = settings.database()
    export = LogExport(
        ExportLedger(database),
        bucket,
        prefix=settings.prefix,
        records_per_part=settings.records_per_part,
        grace=timedelta(seconds=settings.grace_s),
        since=date.fromisoformat(settings.since) if settings.since else None,
    )
    unreachable = export.check_bucket()
    if unreachable:
        logger.error("bucket unreachable at start", extra={"error": unreachable})
    if settings.interval_s > 0:
        start_schedule(export, clock, interval_s=settings.interval_s, logger=logger)
    return export
