"""Test-only function: sleeps as long as the caller asks, then says which replica answered.

`GET /?ms=N` sleeps N milliseconds (0 to 60,000) and answers 200 with the replica's name, so
tests can hold requests in flight (max_inflight, exec_timeout, drains) and load a function
with a known concurrency (autoscaling on in-flight requests).
"""

from __future__ import annotations

import time


def handle(event, context) -> dict:
    try:
        ms = min(max(int(event.query.get("ms", "0")), 0), 60_000)
    except ValueError:
        return {"statusCode": 400, "body": {"error": "INVALID_REQUEST", "message": "ms"}}
    time.sleep(ms / 1000)
    return {"statusCode": 200, "body": context.hostname}
