"""analytics: GET /campaign/{campaignId}?startDate=&endDate= (a campaign's performance) and
GET /report (by hour, day or in total; by campaign, ad, placement, country and device type).
Thin on purpose: the range rules and the arithmetic (CTR, CPC, CPM from integer counts and
micros) live in shared_layer.reporting.domain.analytics, where the numbers come from (PostgreSQL
daily_metrics cached in Redis, today's live counters) in shared_layer.reporting.service.reports.
Needs ``Authorization: Bearer <API key>`` of a key that may read reports (docs/accounts.md).
"""

from __future__ import annotations

from collections.abc import Callable

from shared_layer.composition.accounts import account_checks
from shared_layer.kernel.access import NOBODY, Caller, require, require_owner
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.errors import NotFound
from shared_layer.kernel.http import Handler, Request, Router, json_response
from shared_layer.kernel.metrics import scraped
from shared_layer.kernel.settings import (
    at_least,
    env,
    load_settings,
    min_length,
    positive,
    secret,
    settings_class,
)
from shared_layer.kernel.storage.health import StoreProbe
from shared_layer.kernel.storage.redis_connection import connect, key_layout
from shared_layer.kernel.storage.settings import PostgresSettings, RedisSettings
from shared_layer.pipeline.store.live_counters import CounterKeys
from shared_layer.reporting.domain.analytics import (
    canonical_campaign_id,
    parse_date_range,
    report_body,
)
from shared_layer.reporting.service.report_routes import add_report_routes
from shared_layer.reporting.service.reports import CACHE_GRACE_S, CACHE_TTL_S, CampaignReports
from shared_layer.reporting.store.hourly_report import HourlyReportStore


@settings_class
class AnalyticsSettings(PostgresSettings, RedisSettings):
    postgres_password: str = secret("postgres-password")  # required here
    admin_token: bytes = secret("campaigns-admin-token", check=min_length(16))
    cache_ttl_s: int = env("ANALYTICS_CACHE_TTL_S", default=CACHE_TTL_S, check=positive)
    cache_grace_s: int = env("ANALYTICS_CACHE_GRACE_S", default=CACHE_GRACE_S, check=at_least(0))
    # Short: a Redis that does not answer must not hold a report PostgreSQL can serve alone.
    redis_timeout_s: float = env("ANALYTICS_REDIS_TIMEOUT_S", default=0.5, check=positive)


def build(settings: AnalyticsSettings | None = None, *, clock: Clock = utc_now) -> Handler:
    """Connect to Redis and PostgreSQL; `clock` says what "today" (UTC) is."""
    settings = settings or load_settings(AnalyticsSettings)
    # Reads may be tried once more.
    redis_client = connect(settings.redis_url, timeout_s=settings.redis_timeout_s, retries=1)
    database = settings.database()
    scraped(StoreProbe(redis_client, database))  # store_up{store}: the ops alerts' view
    reports = CampaignReports(
        redis_client,
        database,
        clock=clock,
        cache_ttl_s=settings.cache_ttl_s,
        cache_grace_s=settings.cache_grace_s,
        shards=key_layout(settings.redis_url),
        counter_keys=CounterKeys.for_url(settings.redis_url),
    )
    checks = account_checks(database, None, bootstrap_token=settings.admin_token)
    hourly = HourlyReportStore(database)
    more = lambda r: add_report_routes(r, hourly, checks.authenticate, checks.time_zone_of)  # noqa: E731
    return serve_reports(reports, checks.authenticate, more)


def serve_reports(
    reports: CampaignReports,
    authenticate: Callable[[Request], Caller],
    more_routes: Callable[[Router], None] = lambda router: None,
) -> Handler:
    """GET /campaign/{campaign_id} from `reports` for a key that may read the campaign's reports
    (another advertiser's campaign is a 404, as an unknown one); then `more_routes`."""
    router = Router()
    more_routes(router)

    @router.route("GET", "/campaign/{campaign_id}")
    def campaign_report(request: Request, campaign_id: str) -> dict:
        caller = authenticate(request)
        require(caller, "report")
        date_range = parse_date_range(request.query)
        canonical = canonical_campaign_id(campaign_id)
        if canonical is None:
            raise NotFound(f"campaign {campaign_id[:100]} does not exist")
        if not caller.is_admin:
            owner = reports.advertiser_of(canonical) or NOBODY
            require_owner(caller, owner, f"campaign {canonical}")
        data = reports.read(canonical, date_range)
        pacing = reports.pacing(canonical)  # with the tier: house impressions are counted apart
        body = report_body(canonical, date_range, data.counts, data.missing, data.source, pacing)
        return json_response(200, body, request, {"Cache-Control": "no-store"})

    return router.handler(service="analytics")
