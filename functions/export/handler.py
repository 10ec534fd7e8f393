"""export: log-level data - every closed UTC hour of impressions and clicks, as files in S3.

A thread of every replica exports every `EXPORT_INTERVAL_S` (0: only on request); the work is
in shared_layer.export.service.log_export. With ``Authorization: Bearer <campaigns-admin-token>``:
``GET /status`` (hours exported, failed, pending; lag per type), ``POST /run`` (export now,
starting hours for RUN_SECONDS). At start the bucket is checked: no such bucket or refused
credentials stop the replica with the reason; an unreachable endpoint keeps it not ready.
"""

from __future__ import annotations

from shared_layer.composition.export import ExportSettings, start_export
from shared_layer.export.service.log_export import LogExport
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.http import Handler, Request, Router, json_response, require_bearer
from shared_layer.kernel.log import get_logger
from shared_layer.kernel.settings import load_settings

RUN_SECONDS = 3.0  # POST /run starts no hour after this: a call ends well within any timeout
LOGGER = get_logger("export")


def build(settings: ExportSettings | None = None, *, clock: Clock = utc_now) -> Handler:
    """Check the bucket, start the schedule; `clock` says which hours are closed."""
    settings = settings or load_settings(ExportSettings)
    export = start_export(settings, clock=clock, logger=LOGGER)
    return serve_export(export, settings.admin_token, clock)


def serve_export(export: LogExport, admin_token: bytes, clock: Clock = utc_now) -> Handler:
    """GET /status and POST /run for callers with the admin token; ready once the bucket is."""
    router = Router()

    @router.route("GET", "/status")
    def status(request: Request) -> dict:
        require_bearer(request, admin_token, "export")
        return json_response(200, export.status(clock()), request)

    @router.route("POST", "/run")
    def run(request: Request) -> dict:
        require_bearer(request, admin_token, "export")
        report = export.run(clock(), within_s=RUN_SECONDS)
        return json_response(200, report.to_json(), request)

    def ready() -> bool:
        return export.bucket_ok or export.check_bucket() is None

    return router.handler(service="export", ready=ready)
