"""serve's BidClient against a real HTTP server on loopback: deadline, breaker, keep-alive.

The server plays bid: it answers 200/204/503, stalls, or is not there at all. What is checked
is serve's promise: an answer within the deadline whatever bid does, the reason for no fill,
and a breaker that opens after 5 consecutive failures and closes again after a good trial.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client import REGISTRY

from shared_layer.bidding.service.bid_client import BidClient, NoFillReason
from shared_layer.kernel.models import AdContent, BidRequest, BidResponse
from tests.support import LoopbackServer, QuietHandler

REQUEST = BidRequest(user_id="u-1", placement_id="p-1")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
WINNING = json.dumps(
    {
        **BidResponse(
            campaign_id="c-1",
            ad_id="a-1",
            bid_cpm_micros=2_500_000,
            price_micros=2_500,
            ad_content=AdContent(
                title="T", image_url="https://x.test/i.png", redirect_url="https://x.test/"
            ),
        ).to_json(),
        "impressionId": "imp-1",
    }
).encode()


class FakeBid:
    """A real HTTP server on loopback whose behaviour the test sets (`mode`, `delay_s`)."""

    def __init__(self) -> None:
        self.mode = "win"
        self.delay_s = 0.0
        self.seen: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self.connections: set[int] = set()
        self.barrier: threading.Barrier | None = None  # every request waits for the others
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                fake.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                fake.seen.append(dict(self.headers))
                fake.connections.add(self.client_address[1])
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                if fake.barrier is not None:
                    try:
                        fake.barrier.wait()
                    except threading.BrokenBarrierError:  # the others never came
                        fake.mode = "down"
                status, body = {
                    "win": (200, WINNING),
                    "none": (204, b""),
                    "down": (503, b'{"error":"UPSTREAM_UNAVAILABLE"}'),
                    "bad": (200, b'{"campaignId": 1}'),
                    "refuse": (400, b'{"error":"INVALID_REQUEST"}'),
                }[fake.mode]
                self.send(status, body)

        self.server = LoopbackServer(Handler)
        self.url = f"{self.server.base_url}/function/bid"

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def bid():
    fake = FakeBid()
    yield fake
    fake.close()


def call(client: BidClient):
    started = time.perf_counter()
    result = client.call(REQUEST, request_id="req-1", traceparent=TRACEPARENT)
    return result, time.perf_counter() - started


def test_a_winning_bid_comes_back_with_ids_propagated_over_one_kept_alive_connection(bid):
    client = BidClient(bid.url, timeout_s=1.0)
    for _ in range(5):
        result, _ = call(client)
        assert result.no_fill is None and result.impression_id == "imp-1"
        assert result.bid.campaign_id == "c-1" and result.bid.bid_cpm_micros == 2_500_000
    assert bid.seen[0]["X-Request-Id"] == "req-1" and bid.seen[0]["traceparent"] == TRACEPARENT
    assert json.loads(REQUEST.model_dump_json())["userId"] == "u-1"
    # The one-slot body is the specification's: no empty keyValues for an older bid to refuse.
    assert "keyValues" not in json.loads(bid.bodies[0])
    assert len(bid.connections) == 1, "each call opened a new connection: no keep-alive"


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("none", NoFillReason.NO_BID), ("down", NoFillReason.BID_ERROR),
     ("bad", NoFillReason.BID_ERROR), ("refuse", NoFillReason.BID_ERROR)],
)  # fmt: skip
def test_no_fill_reasons(bid, mode, reason):
    bid.mode = mode
    result, _ = call(BidClient(bid.url, timeout_s=1.0))
    assert result.bid is None and result.no_fill is reason


def test_a_stalled_bid_is_a_timeout_within_the_deadline(bid):
    bid.delay_s = 1.0
    result, elapsed = call(BidClient(bid.url, timeout_s=0.08))
    assert result.no_fill is NoFillReason.BID_TIMEOUT
    assert elapsed < 0.2, elapsed


def test_nothing_listening_is_an_error_at_once():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result, elapsed = call(BidClient(f"http://127.0.0.1:{port}/function/bid", timeout_s=0.08))
    assert result.no_fill is NoFillReason.BID_ERROR and elapsed < 0.2


def test_the_breaker_opens_after_five_failures_and_closes_after_a_good_trial(bid):
    client = BidClient(bid.url, timeout_s=0.05, reset_timeout_s=0.5)
    bid.delay_s = 0.3
    reasons = [call(client)[0].no_fill for _ in range(5)]
    assert reasons == [NoFillReason.BID_TIMEOUT] * 5
    calls_before = len(bid.seen)
    result, elapsed = call(client)
    assert result.no_fill is NoFillReason.CIRCUIT_OPEN and elapsed < 0.01
    assert len(bid.seen) == calls_before, "an open circuit must not call bid"
    assert breaker_metric() == "open"
    bid.delay_s = 0.0
    time.sleep(0.6)
    result, _ = call(client)  # the half-open trial succeeds and closes the circuit
    assert result.no_fill is None
    assert client.breaker.current_state == "closed"
    assert breaker_metric() == "closed"


def breaker_metric() -> str:
    """The state serve_bid_breaker_state reports (what the dashboard shows)."""
    states = ("closed", "open", "half-open")
    values = {
        state: REGISTRY.get_sample_value(
            "serve_bid_breaker_state", {"serve_bid_breaker_state": state}
        )
        for state in states
    }
    return next(state for state, value in values.items() if value == 1.0)


def test_a_4xx_or_a_no_bid_does_not_count_towards_opening(bid):
    client = BidClient(bid.url, timeout_s=0.5)
    for mode in ("none", "refuse") * 5:
        bid.mode = mode
        call(client)
    assert client.breaker.current_state == "closed" and client.breaker.fail_counter == 0


def test_calls_run_in_parallel_not_one_at_a_time_behind_the_breaker(bid):
    # The server answers only once all 8 calls are in flight at the same time: calls made one
    # after another (a lock around the pool or the breaker) would break the barrier.
    bid.barrier = threading.Barrier(8, timeout=5)
    client = BidClient(bid.url, timeout_s=10.0)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: call(client)[0], range(8)))
    assert not bid.barrier.broken, "the 8 calls were not in flight at once: serialised"
    assert all(r.no_fill is None for r in results)
