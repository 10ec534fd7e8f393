"""Reconciliation: do every record of a day's numbers agree, campaign by campaign? (pure)

The same day's numbers live in four places, written by different steps of the pipeline:

| source | impressions, clicks | spend |
|---|---|---|
| ``ledger``: the budget ledger in Redis (what bid charged) | - | yes |
| ``daily_metrics``: PostgreSQL's aggregate (what closed days are reported from) | yes | yes |
| ``live``: the live counters in Redis (what today is reported from) | yes | yes |
| ``events``: events_log, one row per event, times its price (the exact record) | yes | yes |

A source that cannot speak for the day is None and not compared: the live counters for a day
other than today or while they are rebuilt, the ledger while it is rebuilt or after its daily
key expired (3 days). `differences` names every metric where the sources that speak disagree.

Example::

    figures = CampaignFigures("c-1", impressions={"daily_metrics": 3, "live": 3, "events": 3},
                              clicks={...}, spend={"ledger": 30, ...})
    differences([figures])   # [] when everything agrees
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = ["METRICS", "SOURCES", "CampaignFigures", "Difference", "Metric", "differences"]

Metric = Literal["impressions", "clicks", "spend"]
METRICS: Final[tuple[Metric, ...]] = ("impressions", "clicks", "spend")
SOURCES: Final = ("ledger", "daily_metrics", "live", "events")


@dataclass(frozen=True)
class CampaignFigures:
    """One campaign's day: per metric, source -> value (spend in micros); None: not compared."""

    campaign_id: str
    impressions: Mapping[str, int | None] = field(default_factory=dict)
    clicks: Mapping[str, int | None] = field(default_factory=dict)
    spend: Mapping[str, int | None] = field(default_factory=dict)

    def of(self, metric: Metric) -> Mapping[str, int | None]:
        return {"impressions": self.impressions, "clicks": self.clicks, "spend": self.spend}[metric]


@dataclass(frozen=True)
class Difference:
    """The sources of one campaign's metric that disagree, with their values."""

    campaign_id: str
    metric: Metric
    values: Mapping[str, int]

    def __str__(self) -> str:
        shown = ", ".join(f"{source} {value}" for source, value in self.values.items())
        return f"{self.campaign_id} {self.metric}: {shown}"


def differences(campaigns: Iterable[CampaignFigures]) -> list[Difference]:
    """Every (campaign, metric) whose speaking sources do not all hold the same value.

    >>> differences([CampaignFigures("c", spend={"ledger": 5, "events": 5, "live": None})])
    []
    >>> [str(d) for d in differences([CampaignFigures("c", clicks={"live": 2, "events": 1})])]
    ['c clicks: live 2, events 1']
    """
    found = []
    for figures in campaigns:
        for metric in METRICS:
            speaking = {s: v for s, v in figures.of(metric).items() if v is not None}
            if len(set(speaking.values())) > 1:
                found.append(Difference(figures.campaign_id, metric, speaking))
    return found
