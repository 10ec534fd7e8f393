"""The clock every day boundary is computed from: UTC, injectable so tests can move time.

The daily budget starts afresh at 00:00 UTC, live counters and reports split days the same way,
so all of them take a `Clock` (a callable returning an aware datetime) instead of reading the
system time themselves.

Example::

    day = utc_day()                                          # today, UTC
    day = utc_day(lambda: datetime(2025, 11, 29, 23, 59, tzinfo=UTC))   # in a test
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

__all__ = ["Clock", "utc_day", "utc_now"]

Clock = Callable[[], datetime]
"""Returns the current time as a timezone-aware datetime."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_day(clock: Clock = utc_now) -> date:
    """The UTC calendar day at the clock's current time; naive datetimes are refused.

    >>> utc_day(lambda: datetime(2025, 11, 29, 23, 59, 59, tzinfo=UTC))
    datetime.date(2025, 11, 29)
    """
    now = clock()
    if now.tzinfo is None:
        raise ValueError("the clock must return timezone-aware datetimes")
    return now.astimezone(UTC).date()
