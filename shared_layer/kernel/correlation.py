"""The correlation id that follows one ad from serve to bid, Kafka, the aggregates and the click.

serve's request id (``X-Request-Id``, ours or the publisher's) is the ad's correlation id, and
its W3C ``traceparent`` travels beside it. serve sends both to bid; bid records them with the
impression in the outbox entry; the relay puts them on the Kafka record as headers (names
below); the connector hands them to daily-metrics and live-counters, which log them; the click
token carries the request id, so the click's log line and its Kafka record name the same ad.

A log search for one request id therefore finds every step of one ad. Request ids are bounded
text (`REQUEST_ID_PATTERN`), never campaign or user data, so they are safe in logs and headers.

Example::

    correlation = Correlation(request.request_id, request.traceparent)
    correlation.kafka_headers()   # [("x-request-id", b"..."), ("traceparent", b"00-...")]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "REQUEST_ID_HEADER",
    "REQUEST_ID_PATTERN",
    "TRACEPARENT_HEADER",
    "TRACEPARENT_PATTERN",
    "Correlation",
    "is_request_id",
]

REQUEST_ID_HEADER: Final = "x-request-id"
TRACEPARENT_HEADER: Final = "traceparent"
REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# version 00: trace id, parent span id, flags (groups 1-3)
TRACEPARENT_PATTERN: Final = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def is_request_id(value: object) -> bool:
    """True for text a request id may be (what the edge accepts from a client)."""
    return isinstance(value, str) and REQUEST_ID_PATTERN.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Correlation:
    """One ad's request id and trace context; `traceparent` may be empty (a click has none)."""

    request_id: str
    traceparent: str = ""

    def __post_init__(self) -> None:
        if not is_request_id(self.request_id):
            raise ValueError("a request id is 1 to 128 of A-Z a-z 0-9 . _ : -")
        if self.traceparent and not TRACEPARENT_PATTERN.fullmatch(self.traceparent):
            raise ValueError("traceparent must be a W3C version 00 traceparent")

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """The Kafka record headers that carry this correlation."""
        headers = [(REQUEST_ID_HEADER, self.request_id.encode("ascii"))]
        if self.traceparent:
            headers.append((TRACEPARENT_HEADER, self.traceparent.encode("ascii")))
        return headers

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Correlation | None:
        """The correlation in a record's headers (names lower-case), if it has a valid one."""
        request_id = headers.get(REQUEST_ID_HEADER)
        if not is_request_id(request_id):
            return None
        traceparent = headers.get(TRACEPARENT_HEADER, "")
        if not TRACEPARENT_PATTERN.fullmatch(traceparent):
            traceparent = ""
        return cls(str(request_id), traceparent)
