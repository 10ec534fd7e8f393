"""Today's numbers exact under faults, the pure parts: the rebuild's plan, the reconciliation's
comparison and the outbox relay's crash seam. The Lua scripts themselves run against real
Redis in tests/integration/test_live_counters_recovery.py."""

from __future__ import annotations

import signal
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from rich.console import Console

from localplatform.reconcile import print_report
from shared_layer.pipeline.store.live_counters import (
    LOST_AT_KEY,
    READY_KEY,
    DaySnapshot,
    rebuild_plan,
    stats_key,
)
from shared_layer.pipeline.store.relay import CrashAfterAcks
from shared_layer.reporting.domain.reconciliation import CampaignFigures, differences
from shared_layer.reporting.service.reconciliation import DayReconciliation

DAY = date(2026, 12, 3)


def test_the_rebuild_plan_starts_from_postgres_and_names_each_recent_event_by_its_keys():
    snapshot = DaySnapshot(
        day=DAY,
        totals={"c-2": (5, 1, 700), "c-1": (2, 0, 300)},
        recent=(("e-1", "c-1", False, 150), ("e-2", "c-2", True, 0), ("e-3", "c-3", False, 9)),
        lost_at="1764720000",
    )
    call = rebuild_plan(snapshot, ready_value="now", keep_days=3, dedupe_s=600)
    campaigns = ["c-1", "c-2", "c-3"]  # c-3: logged only in the recent events
    assert call.keys == (
        READY_KEY,
        LOST_AT_KEY,
        *[stats_key(k, c, DAY) for c in campaigns for k in ("impressions", "clicks", "spend")],
    )
    expiry = int(datetime(2026, 12, 6, tzinfo=UTC).timestamp())
    bases = (2, 0, 300, 5, 1, 700, 0, 0, 0)
    # e-1: an impression of c-1 (KEYS 3, its spend 5); e-2 a click of c-2 (KEYS 7, no spend)
    recent = "e-1,3,5,150;e-2,7,0,0;e-3,9,11,9;"
    assert call.args == ("now", 600, *bases, expiry, "1764720000", "live::seen::", recent)
    assert call.records == 3


def test_a_rebuild_of_an_empty_day_only_sets_the_ready_key():
    call = rebuild_plan(DaySnapshot(DAY, {}, (), ""), ready_value="t", keep_days=3, dedupe_s=1)
    assert call.keys == (READY_KEY, LOST_AT_KEY)
    assert call.args[0] == "t" and call.args[-3:] == ("", "live::seen::", "")


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        (CampaignFigures("c", spend={"ledger": 7, "daily_metrics": 7, "events": 7}), []),
        (CampaignFigures("c", spend={"ledger": 7, "live": None, "events": 7}), []),
        (
            CampaignFigures("c", impressions={"daily_metrics": 3, "live": 4, "events": 3}),
            ["c impressions: daily_metrics 3, live 4, events 3"],
        ),
        (
            CampaignFigures("c", clicks={"live": 1, "events": 1}, spend={"ledger": 2, "events": 1}),
            ["c spend: ledger 2, events 1"],
        ),
    ],
)
def test_reconciliation_names_every_metric_whose_sources_disagree(figures, expected):
    assert [str(d) for d in differences([figures])] == expected


def test_the_crash_seam_is_off_unless_the_test_profile_sets_both_variables(tmp_path: Path):
    assert CrashAfterAcks.from_environment({}) is None
    assert CrashAfterAcks.from_environment({"OUTBOX_RELAY_KILL_AFTER_ACKS": "3"}) is None
    seam = CrashAfterAcks.from_environment(
        {"OUTBOX_RELAY_KILL_AFTER_ACKS": "3", "OUTBOX_RELAY_KILL_TOKENS": str(tmp_path)}
    )
    assert seam == CrashAfterAcks(after_acks=3, tokens=tmp_path)


def test_the_crash_seam_kills_once_per_token_after_enough_acks(tmp_path, monkeypatch):
    kills: list[int] = []
    monkeypatch.setattr("os.kill", lambda _pid, sig: kills.append(sig))
    seam = CrashAfterAcks(after_acks=5, tokens=tmp_path)
    seam.acknowledged(4)
    assert kills == []  # no token, and too few acks anyway
    (tmp_path / "crash-1").touch()
    seam.acknowledged(0)
    assert kills == []  # a token, but four acks
    seam.acknowledged(1)
    assert kills == [signal.SIGKILL] and not list(tmp_path.iterdir())  # the token was taken
    seam.acknowledged(10)
    assert kills == [signal.SIGKILL]  # no token left: no second crash


def test_reconcile_prints_each_record_and_every_difference():
    figures = CampaignFigures(
        "c-1",
        impressions={"daily_metrics": 3, "live": 4, "events": 3},
        spend={"ledger": 1_500_000, "daily_metrics": 1_500_000, "live": None, "events": 1_500_000},
    )
    report = DayReconciliation(DAY, [figures], differences([figures]), ["a note"])
    console = Console(record=True, width=200)
    print_report(report, console)
    text = console.export_text()
    assert "c-1" in text and "1.50" in text and "a note" in text
    assert "1 differences:" in text and "c-1 impressions: daily_metrics 3, live 4, events 3" in text
