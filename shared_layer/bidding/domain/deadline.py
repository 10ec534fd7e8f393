"""serve's deadline for its bid call, carried to bid so that a bid nobody waits for is not charged.

serve gives up on bid after its timeout and answers no fill. Without the deadline, a bid request
that waited in a queue past that moment would still be decided and charged, and its impression
counted, for an ad that was never shown. serve therefore sends the moment it stops waiting
(``X-Bid-Deadline``: Unix time in milliseconds), and bid refuses to start an auction once it has
passed (204, ``X-No-Bid-Reason: deadline-passed``, nothing charged). A request without the header
has no deadline (a direct caller). The check happens before the auction, where the queueing
delay has already been spent; the auction and its charge take well under a millisecond, so the
window left is the way back to serve. The hosts' clocks are assumed to agree to a few
milliseconds (one machine locally; NTP on a cluster).

>>> deadline_header(1_000.0, 0.08)
'1000080'
>>> parse_deadline("1000080")
1000.08
>>> passed(1000.08, now_s=1000.081), passed(1000.08, now_s=1000.0)
(True, False)
"""

from __future__ import annotations

from shared_layer.kernel.errors import ValidationFailed

__all__ = ["DEADLINE_HEADER", "NO_BID_REASON", "deadline_header", "parse_deadline", "passed"]

DEADLINE_HEADER = "X-Bid-Deadline"
NO_BID_REASON = "deadline-passed"
_MAX_DIGITS = 15  # milliseconds until the year 33658: anything longer is not a deadline


def deadline_header(now_s: float, timeout_s: float) -> str:
    """The header's value for a call made at `now_s` (Unix seconds) that waits `timeout_s`."""
    return str(int((now_s + timeout_s) * 1000))


def parse_deadline(value: str | None) -> float | None:
    """The deadline in Unix seconds, None when absent, or `ValidationFailed` (a 400)."""
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > _MAX_DIGITS:
        raise ValidationFailed(
            f"{DEADLINE_HEADER} must be Unix time in whole milliseconds, got {value[:32]!r}",
            fields=(DEADLINE_HEADER,),
        )
    return int(value) / 1000


def passed(deadline_s: float | None, *, now_s: float) -> bool:
    """Whether a call with this deadline is no longer awaited at `now_s`."""
    return deadline_s is not None and now_s > deadline_s
