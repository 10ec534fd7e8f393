"""serve's deadline for its bid call: the header serve writes and the check bid makes."""

from __future__ import annotations

import pytest

from shared_layer.bidding.domain.deadline import deadline_header, parse_deadline, passed
from shared_layer.kernel.errors import ValidationFailed


def test_the_header_bid_reads_is_the_moment_serve_stops_waiting():
    assert parse_deadline(deadline_header(1_700_000_000.0, 0.08)) == 1_700_000_000.08


def test_a_deadline_passes_only_after_its_moment():
    assert not passed(1_000.08, now_s=1_000.08)
    assert passed(1_000.08, now_s=1_000.081)


def test_no_header_means_no_deadline():
    assert parse_deadline(None) is None and parse_deadline("") is None
    assert not passed(None, now_s=1e12)


@pytest.mark.parametrize("value", ["soon", "-5", "1.5e12", " 12", "١٢٣", "9" * 16])
def test_anything_but_whole_milliseconds_is_refused_by_name(value):
    with pytest.raises(ValidationFailed, match="X-Bid-Deadline") as raised:
        parse_deadline(value)
    assert raised.value.fields == ("X-Bid-Deadline",)
