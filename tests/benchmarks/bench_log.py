"""The per-request log line: its CPU with our formatter and with Powertools' own.

In this process, with no platform: a kernel Router with one route answers a GET through the
handler every function uses (request id, traceparent, dispatch, metrics, one JSON log line to
/dev/null). Three variants run back to back in each of BENCH_ROUNDS rounds: the line written by
our one-pass msgspec formatter, by Powertools' own formatter, and no line at all
(`access_log=False`). A line's cost is the variant's CPU per request minus the no-line one;
bench_watchdog puts it beside serve's whole request through of-watchdog, in the same run.
"""

from __future__ import annotations

import os
import statistics
import time
from types import SimpleNamespace

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from shared_layer.kernel.http import Router
from shared_layer.kernel.log import get_logger

ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
REQUESTS = 20_000
SERVICE = "bench-log"

EVENT = SimpleNamespace(
    method="GET",
    path="/",
    query={"placement": "p-1"},
    body=b"",
    headers={
        "X-Request-Id": "0f8e2c1d-1234-4c1b-9b7a-1234567890ab",
        "Traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    },
)


def _router() -> Router:
    router = Router()

    @router.route("GET", "/")
    def ad(request):
        request.log_fields.update(placement="p-1", campaignId="c-1", outcome="ad")
        return {"statusCode": 200, "body": "{}", "headers": {"Content-Type": "application/json"}}

    return router


def _cpu_per_request(handle) -> float:
    for _ in range(1_000):
        handle(EVENT, None)
    began = time.process_time()
    for _ in range(REQUESTS):
        handle(EVENT, None)
    return (time.process_time() - began) / REQUESTS


def line_costs() -> dict[str, float]:
    """Median microseconds of CPU per request: `ours` and `powertools` are the line's own cost
    with each formatter, `none` the request without a line."""
    router = _router()
    logged = router.handler(SERVICE)
    silent = router.handler(SERVICE, access_log=False)
    handler = get_logger(SERVICE).registered_handler
    ours = handler.formatter
    powertools = LambdaPowertoolsFormatter()
    powertools.append_keys(service=SERVICE)
    runs: dict[str, list[float]] = {"ours": [], "powertools": [], "none": []}
    with open(os.devnull, "w") as sink:
        handler.setStream(sink)
        try:
            for _ in range(ROUNDS):
                handler.setFormatter(ours)
                runs["ours"].append(_cpu_per_request(logged))
                handler.setFormatter(powertools)
                runs["powertools"].append(_cpu_per_request(logged))
                handler.setFormatter(ours)
                runs["none"].append(_cpu_per_request(silent))
        finally:
            handler.setFormatter(ours)
    median = {k: statistics.median(v) * 1e6 for k, v in runs.items()}
    return {
        "ours": median["ours"] - median["none"],
        "powertools": median["powertools"] - median["none"],
        "none": median["none"],
    }


def main() -> str:
    cost = line_costs()
    print(f"  in-process request without a line: {cost['none']:6.1f} us CPU")
    print(f"  the line, our formatter:            {cost['ours']:6.1f} us")
    print(f"  the line, Powertools' formatter:    {cost['powertools']:6.1f} us")
    print(f"  ours / Powertools':                 {cost['ours'] / cost['powertools']:.2f}")
    return f"log line {cost['ours']:.1f} us, {cost['powertools']:.1f} us with Powertools' formatter"


if __name__ == "__main__":
    main()
