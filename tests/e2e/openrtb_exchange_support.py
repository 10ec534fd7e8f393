"""The exchange processes of test_openrtb_settlement: each sends BidRequests through the gateway
and answers every bid with the notices an exchange sends. Kept apart and small, so that a spawned
process imports little (on a loaded machine the test module's imports take a minute)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import requests


def _get(url: str) -> None:
    """A notice, retried as exchanges retry: a killed replica's 5xx or reset is not the end."""
    for _ in range(20):
        try:
            if requests.get(url, timeout=5).status_code == 204:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"notice never accepted: {url}")


def exchange(openrtb: str, cpm: int, placements: list[str], seed: int, requests_each: int,
             start: Any, put: Callable[[Any], None]) -> None:  # fmt: skip
    """`requests_each` BidRequests to `openrtb`; per bid, a random half win at a random clearing
    price below the bid (billing notices repeated, the win notice among them, then a loss
    notice), the others lose (loss notices, repeated). Calls `put((fate, campaign id, bid id,
    clearing micros))` per request, fate "won", "lost", "nobid" or "error"."""
    rng = random.Random(seed)
    start.wait()
    with requests.Session() as session:
        for n in range(requests_each):
            placement = rng.choice(placements)
            body = {
                "id": f"settle-{seed}-{n}",
                "imp": [{"id": "1", "tagid": placement, "banner": {"w": 300, "h": 250}}],
                "site": {"id": "site-settle"},
                "user": {"id": f"settle-user-{seed}"},
                "tmax": 1000,
            }
            try:
                answer = session.post(openrtb, json=body, timeout=5)
            except requests.RequestException:
                put(("error", "", "", 0))
                continue
            if answer.status_code != 200 or "seatbid" not in answer.json():
                put(("error" if answer.status_code >= 500 else "nobid", "", "", 0))
                continue
            [bid] = answer.json()["seatbid"][0]["bid"]
            if rng.random() < 0.5:
                clearing = rng.randint(1_000, cpm * 1_000_000)  # CPM micros, below the bid
                price = f"{Decimal(clearing).scaleb(-6):f}"
                burl = bid["burl"].replace("${AUCTION_PRICE}", price)
                notices = [burl] * rng.randint(1, 3)
                notices.insert(rng.randint(0, len(notices)), bid["nurl"].replace(
                    "${AUCTION_PRICE}", price))  # fmt: skip
                for url in [*notices, bid["lurl"]]:
                    _get(url)
                put(("won", bid["cid"], bid["id"], clearing // 1000))
            else:
                for _ in range(rng.randint(1, 2)):
                    _get(bid["lurl"])
                put(("lost", bid["cid"], bid["id"], 0))
