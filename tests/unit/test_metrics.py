"""The metrics helper: every label set named in `every` is exported at zero from the start, and a
feature's metrics keep the names the dashboards and alerts read."""

from __future__ import annotations

from prometheus_client import REGISTRY

from shared_layer.kernel.metrics import counter, enum, gauge


def test_every_series_named_exists_at_zero_before_anything_happens() -> None:
    counter("unit_zeroed_total", "test", ["kind", "outcome"], every=[("a", "ok"), ("b", "error")])
    gauge("unit_zeroed_gauge", "test", ["kind"], every=("a", "b"))
    sample = REGISTRY.get_sample_value
    assert sample("unit_zeroed_total", {"kind": "a", "outcome": "ok"}) == 0.0
    assert sample("unit_zeroed_total", {"kind": "b", "outcome": "error"}) == 0.0
    assert sample("unit_zeroed_total", {"kind": "a", "outcome": "error"}) is None
    assert sample("unit_zeroed_gauge", {"kind": "b"}) == 0.0


def test_an_enum_starts_in_its_first_state() -> None:
    enum("unit_state", "test", ("closed", "open"))
    assert REGISTRY.get_sample_value("unit_state", {"unit_state": "closed"}) == 1.0
    assert REGISTRY.get_sample_value("unit_state", {"unit_state": "open"}) == 0.0


def test_feature_metrics_keep_their_names() -> None:
    from shared_layer.bidding import metrics as bidding
    from shared_layer.pipeline import metrics as pipeline

    assert bidding.BID_DECISIONS._name == "bid_decisions"  # exported as bid_decisions_total
    assert pipeline.OUTBOX_BACKLOG._name == "outbox_backlog"
    # The series exist from the start (other tests in this process may have counted some).
    sample = REGISTRY.get_sample_value
    assert sample("bid_decisions_total", {"outcome": "below-floor"}) is not None
    assert sample("serve_requests_total", {"outcome": "circuit-open"}) is not None
    assert sample("events_log_partitions_total", {"action": "kept"}) is not None
