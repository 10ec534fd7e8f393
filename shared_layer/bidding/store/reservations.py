"""Reservations in Redis: an exchange bid's price held in the budget until the exchange says
whether it won, then settled at the clearing price or released, exactly once.

Why: on an exchange (`openrtb`) most bids lose. Charging at the bid would spend budget, and count
impressions, that never happened. So the budget script (`budget_charge.lua`, through
`RedisBudgetLedger.reserve`) adds the bid's price to the spend keys, where it holds the budget
against concurrent bids, and writes a reservation beside it in the same atomic step. Then one
script (`budget_settle.lua`) moves it exactly once:

- settle (billing notice, or win notice when the exchange sends no billing notice): the spend
  keeps the clearing price, the rest returns to the budget, and the impression event, at the
  clearing price, joins the outbox (so live counters and daily_metrics follow as for any
  impression);
- win (a win notice before any billing notice): the clearing price is remembered; the
  reservation stays open;
- release (loss notice, or the end of the window without any notice): the whole amount returns.
  A reservation still open at the window's end that had a win notice settles at that price
  (`sweep`): that is the exchange that sends no billing notice.

Keys (``{shard<k>of<n>}`` the campaign's shard tag, as the budget's)::

    budget::reservation::{shard<k>of<n>}::<campaignId>::<bidId>   hash: state (reserved, won,
        settled, released), amount, price, daily, lifetime, tally (key names), record (the
        impression's outbox fields, JSON), until (ms); kept `Hold.keep_s` (a notice's lifetime)
    budget::reservations::{shard<k>of<n>}   ZSET of the open reservations by window end (ms)
    budget::reservations::tally::{shard<k>of<n>}::<campaignId>::<day>   hash: reserved,
        reservedMicros, settled, settledMicros, settledReservedMicros, released,
        releasedMicros (for reconciliation; TTL as the daily spend key)

Example::

    reservations = RedisReservations(redis_client, shards=shards)
    reservations.settle("c-1", "bid-1", 1_200)        # "settled", or the state it already had
    reservations.sweep(now_ms=...)                   # releases (or settles) what timed out
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, Literal

import msgspec

from shared_layer.kernel.errors import UpstreamFailed, UpstreamUnavailable
from shared_layer.kernel.money import Micros
from shared_layer.kernel.storage.lua import script
from shared_layer.kernel.storage.outbox import OUTBOX_PREFIX, outbox_fields, outbox_stream
from shared_layer.kernel.storage.redis_connection import REDIS_ERRORS, UNREACHABLE_ERRORS
from shared_layer.kernel.storage.shards import SINGLE, Shards
from shared_layer.pipeline.domain.events import parse_event

__all__ = [
    "DEFAULT_WINDOW_S",
    "SETTLE_SCRIPT",
    "Hold",
    "RedisReservations",
    "Tally",
    "encode_record",
    "reservation_key",
    "reservation_keys",
    "tally_key",
    "window_key",
]

DEFAULT_WINDOW_S: Final = 300
SETTLE_SCRIPT: Final = script(__file__, "budget_settle.lua")
Move = Literal["settle", "win", "release"]
_CORRELATION_FIELDS: Final = (b"rid", b"tp")
_SHARD_TAG: Final = re.compile(r"\{shard([0-9]+)of[0-9]+\}")


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation to make: the bid's id, how long it holds the budget without a notice, and
    how long its record stays to recognise late and repeated notices."""

    bid_id: str
    window_s: int = DEFAULT_WINDOW_S
    keep_s: int = 7 * 86_400


@dataclass(frozen=True, slots=True)
class Tally:
    """One campaign-day's reservations: made, settled and released (counts and micros)."""

    reserved: int = 0
    reserved_micros: Micros = 0
    settled: int = 0
    settled_micros: Micros = 0
    settled_reserved_micros: Micros = 0
    released: int = 0
    released_micros: Micros = 0

    @property
    def open_micros(self) -> Micros:
        """What is still held: reserved, neither settled nor released."""
        return self.reserved_micros - self.settled_reserved_micros - self.released_micros


def reservation_key(campaign_id: str, bid_id: str, shards: Shards = SINGLE) -> str:
    return f"budget::reservation::{shards.campaign(campaign_id)}::{bid_id}"


def window_key(shards: Shards, shard: int) -> str:
    return f"budget::reservations::{shards.tag(shard)}"


def tally_key(campaign_id: str, day: date, shards: Shards = SINGLE) -> str:
    return f"budget::reservations::tally::{shards.campaign(campaign_id)}::{day.isoformat()}"


def reservation_keys(campaign_id: str, bid_id: str, day: date, shards: Shards) -> list[str]:
    """KEYS[6..8] of a reserving charge: the reservation, the shard's window, the tally."""
    return [
        reservation_key(campaign_id, bid_id, shards),
        window_key(shards, shards.of(campaign_id)),
        tally_key(campaign_id, day, shards),
    ]


def encode_record(record: Sequence[bytes]) -> str:
    """The impression's outbox fields, kept in the reservation as a JSON list of text."""
    return json.dumps([field.decode() for field in record], separators=(",", ":"))


def _priced_record(raw: str, price_micros: Micros) -> list[bytes]:
    """The kept outbox fields with the event's price set to the settled `price_micros`."""
    texts = json.loads(raw)
    fields = dict(zip(texts[::2], texts[1::2], strict=True))
    event = msgspec.structs.replace(parse_event(fields["value"]), price_micros=price_micros)
    record = outbox_fields(event)
    for name in _CORRELATION_FIELDS:
        if name.decode() in fields:
            record += [name, fields[name.decode()].encode()]
    return record


class RedisReservations:
    """Settles, records wins on and releases reservations; thread-safe as its client is."""

    def __init__(
        self, redis_client: Any, *, shards: Shards = SINGLE, outbox_prefix: str = OUTBOX_PREFIX
    ) -> None:
        self._client = redis_client
        self._shards = shards
        self._outbox_prefix = outbox_prefix
        self._script = redis_client.register_script(SETTLE_SCRIPT)

    def settle(self, campaign_id: str, bid_id: str, price_micros: Micros) -> str:
        """Settle at `price_micros` (at most the amount reserved); the state after the call."""
        key = reservation_key(campaign_id, bid_id, self._shards)
        return self._move(key, "settle", price_micros)

    def win(self, campaign_id: str, bid_id: str, price_micros: Micros) -> str:
        """Remember a win notice's price on an open reservation; the state after the call."""
        return self._move(reservation_key(campaign_id, bid_id, self._shards), "win", price_micros)

    def release(self, campaign_id: str, bid_id: str) -> str:
        """Return the whole amount to the budget (a loss); the state after the call."""
        return self._move(reservation_key(campaign_id, bid_id, self._shards), "release", 0)

    def sweep(self, *, now_ms: int, limit: int = 500) -> int:
        """Close the reservations whose window ended by `now_ms`: settle those with a win notice
        at its price, release the others. Returns how many this call closed."""
        closed = 0
        for shard in self._shards.all():
            try:
                due = self._client.zrangebyscore(
                    window_key(self._shards, shard), "-inf", now_ms, start=0, num=limit
                )
            except REDIS_ERRORS as exc:
                raise _upstream_error("read", exc) from exc
            for key in due:
                name = key.decode() if isinstance(key, bytes) else key
                state, price = self._state(name)
                if not state:  # its record is gone (kept far longer than any window): drop it
                    self._client.zrem(window_key(self._shards, shard), name)
                    continue
                if state == "won":
                    changed = self._move(name, "settle", price) == "settled"
                else:
                    changed = self._move(name, "release", 0) == "released"
                closed += changed
        return closed

    def state(self, campaign_id: str, bid_id: str) -> str:
        """The reservation's state ('' when there is none)."""
        return self._state(reservation_key(campaign_id, bid_id, self._shards))[0]

    def tally(self, campaign_id: str, day: date) -> Tally:
        """One campaign-day's reservations (for reconciliation and tests)."""
        try:
            raw = self._client.hgetall(tally_key(campaign_id, day, self._shards))
        except REDIS_ERRORS as exc:
            raise _upstream_error("read", exc) from exc
        got = {_text(k): int(v) for k, v in raw.items()}
        return Tally(
            got.get("reserved", 0),
            got.get("reservedMicros", 0),
            got.get("settled", 0),
            got.get("settledMicros", 0),
            got.get("settledReservedMicros", 0),
            got.get("released", 0),
            got.get("releasedMicros", 0),
        )

    def _state(self, key: str) -> tuple[str, Micros]:
        try:
            state, price = self._client.hmget(key, "state", "price")
        except REDIS_ERRORS as exc:
            raise _upstream_error("read", exc) from exc
        return _text(state or b""), int(price or 0)

    def _move(self, key: str, move: Move, price_micros: Micros) -> str:
        try:
            held = self._client.hmget(key, "daily", "lifetime", "tally", "record", "amount")
            if held[0] is None:
                return ""
            daily, lifetime, tally, record, amount = (_text(v) for v in held)
            price = min(price_micros, int(amount))
            shard = int(_SHARD_TAG.search(key).group(1))  # type: ignore[union-attr]
            keys = [
                key,
                daily,
                lifetime,
                outbox_stream(self._shards, shard, self._outbox_prefix),
                window_key(self._shards, shard),
                tally,
            ]
            args: list[Any] = [move, price]
            if move == "settle":
                args += _priced_record(record, price)
            _changed, state = self._script(keys=keys, args=args)
        except REDIS_ERRORS as exc:
            raise _upstream_error("settle", exc) from exc
        return _text(state)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _upstream_error(action: str, exc: Exception) -> Exception:
    if isinstance(exc, UNREACHABLE_ERRORS):
        return UpstreamUnavailable(f"reservations unavailable: could not {action} in Redis")
    return UpstreamFailed(f"reservations error: Redis refused to {action}")
