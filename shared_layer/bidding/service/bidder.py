"""The bid use case: one auction over this replica's snapshot, charged and recorded atomically.

`Bidder.bid` runs `bidding.domain.auction.decide` with the ledger (`bidding.store.budget_ledger`),
the eligibility checks plus two memos (campaigns whose budget refused today, and campaigns ahead of
their pacing curve until it caught up, are skipped without asking Redis), the request's placement
floor from the snapshot (`PlacementFloor`: floor and first or second price), and the impression
recorder (`kernel.storage.outbox`): the winning charge appends its impression event to the outbox in
the same Lua step, where pacing and the frequency cap are checked too. One impression id per
request: at most one candidate is charged. When the ledger turns out to have lost its data, the
rebuild from PostgreSQL is started before the error goes up (serve answers no fill meanwhile).

Example::

    bidder = Bidder(snapshot, ledger, recovery, clock=utc_now)
    outcome = bidder.bid(parse(BidRequest, body))   # outcome.decision is None: no bid (204)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared_layer.bidding.domain.auction import (
    NO_FLOOR,
    Decision,
    SlotWin,
    decide,
    decide_slots,
    effective_floor,
    fitting_ads,
)
from shared_layer.bidding.domain.budget import (
    BudgetLedger,
    ChargeOutcome,
    ChargeResult,
    RefusalMemo,
)
from shared_layer.bidding.domain.explain import explain
from shared_layer.bidding.domain.pacing import PacingMemo
from shared_layer.bidding.domain.targeting import ELIGIBILITY_CHECKS, daypart_check
from shared_layer.bidding.service.budget_recovery import BudgetRecovery
from shared_layer.bidding.store.budget_ledger import (
    LedgerNotReady,
    RedisBudgetLedger,
    impression_recorder,
)
from shared_layer.bidding.store.reservations import Hold
from shared_layer.campaigns.service.snapshot import CampaignSnapshot
from shared_layer.kernel.clock import Clock, utc_now
from shared_layer.kernel.correlation import Correlation
from shared_layer.kernel.errors import UpstreamUnavailable
from shared_layer.kernel.models import BidRequest, Campaign, PlacementFloor, Slot, SlotsRequest
from shared_layer.kernel.money import Micros, format_micros

__all__ = ["MAX_CHARGE_ATTEMPTS", "BidOutcome", "Bidder", "SlotsOutcome"]

MAX_CHARGE_ATTEMPTS = 50  # Redis round trips per request, at most


@dataclass(frozen=True, slots=True)
class BidOutcome:
    """The auction's answer for one request, with what the metrics need to know."""

    decision: Decision | None
    impression_id: str
    refused: tuple[str, ...]
    below_floor_micros: Micros | None = None  # the floor that stopped the auction, if one did
    explanation: dict[str, Any] | None = None  # with explain: why each candidate did not win

    @property
    def label(self) -> Literal["bid", "budget-exhausted", "below-floor", "no-candidate"]:
        if self.decision is not None:
            return "bid"
        if self.refused:
            return "budget-exhausted"
        return "below-floor" if self.below_floor_micros is not None else "no-candidate"

    @property
    def reason(self) -> str | None:
        """Why nothing was bid, for people (the bid function's ``X-No-Bid-Reason``)."""
        if self.decision is not None:
            return None
        if self.below_floor_micros is not None and not self.refused:
            floor = format_micros(self.below_floor_micros)
            return f"below-floor: every eligible bid is below the floor CPM {floor}"
        return self.label


@dataclass(frozen=True, slots=True)
class SlotsOutcome:
    """The winners of a several-slot request, by slot name (a slot nothing filled: [])."""

    wins: dict[str, list[SlotWin]]
    explanation: dict[str, Any] | None = None  # with explain: each slot's winners and reasons

    @property
    def filled(self) -> int:
        return sum(len(won) for won in self.wins.values())

    @property
    def spend_micros(self) -> Micros:
        return sum(w.decision.price.charge_micros for won in self.wins.values() for w in won)


class Bidder:
    """Runs auctions for one bid replica; thread-safe as its snapshot and ledger are."""

    def __init__(
        self,
        snapshot: CampaignSnapshot,
        ledger: RedisBudgetLedger,
        recovery: BudgetRecovery,
        *,
        clock: Clock = utc_now,
        max_attempts: int = MAX_CHARGE_ATTEMPTS,
    ) -> None:
        self.snapshot = snapshot
        self.ledger = ledger
        self._recovery = recovery
        self._clock = clock
        self._max_attempts = max_attempts
        self.refusals = RefusalMemo(clock=clock)
        self.paced = PacingMemo(clock=clock)
        self._daypart = daypart_check(clock)
        self.checks = (
            *ELIGIBILITY_CHECKS,
            self._daypart,
            self.refusals.eligible,
            self.paced.eligible,
        )

    def ready(self) -> bool:
        return self.snapshot.ready()

    def _on_refused(self, campaign: Campaign, charge: ChargeResult) -> None:
        if charge.outcome is ChargeOutcome.PACED:
            self.paced.remember(campaign, charge.daily_spent_micros)
        else:
            self.refusals.remember(campaign, charge)

    def bid_slots(
        self,
        request: SlotsRequest,
        correlation: Correlation | None = None,
        *,
        explain: bool = False,
    ) -> SlotsOutcome:
        """Every slot's winners, each charged once with its own impression recorded in the same
        step (`auction.decide_slots`); errors go up as for `bid`. `explain` adds, per slot, its
        winners with their prices and why each other candidate did not win."""
        if not self.snapshot.ready():
            raise UpstreamUnavailable("the campaign snapshot is not loaded yet")
        at = self._clock()
        floors = self.snapshot.floors
        refused: dict[str, ChargeOutcome] = {}
        seen: list[tuple[Slot, BidRequest, Callable[[Campaign], bool]]] = []

        def new_impression(slot_request: BidRequest) -> tuple[str, Any]:
            impression_id = str(uuid.uuid4())
            recorder = impression_recorder(
                slot_request, impression_id, at=at, correlation=correlation
            )
            return impression_id, recorder

        def on_refused(campaign: Campaign, charge: ChargeResult) -> None:
            refused[campaign.id] = charge.outcome
            self._on_refused(campaign, charge)

        try:
            wins = decide_slots(
                self.snapshot.index,
                request,
                self.ledger,
                new_impression=new_impression,
                checks=self.checks,
                floors=lambda placement: floors.get(placement, NO_FLOOR),
                on_refused=on_refused,
                max_attempts=self._max_attempts,
                on_slot=(lambda *observed: seen.append(observed)) if explain else None,
            )
        except LedgerNotReady:
            self._recovery.ensure()
            raise
        explanation = None
        if explain:  # after the auction, from what it saw: nothing more is charged
            explanation = {
                "slots": {
                    slot.name: self._explain(
                        slot_request,
                        [w.decision for w in wins[slot.name]],
                        refused,
                        floors.get(slot.placement_id, NO_FLOOR),
                        duplicate=duplicate,
                        targeting=(lambda c, _r, slot=slot: bool(fitting_ads(c, slot)),),
                    )
                    for slot, slot_request, duplicate in seen
                }
            }
        return SlotsOutcome(wins, explanation)

    def bid(
        self,
        request: BidRequest,
        correlation: Correlation | None = None,
        *,
        explain: bool = False,
        window_s: int | None = None,
    ) -> BidOutcome:
        """The winner charged and its impression recorded (with `correlation`, the serve
        request's ids, for the Kafka record's headers), or no decision; errors go up.
        `explain` adds why each candidate did not win (`bidding.domain.explain`).

        With `window_s` (an exchange's bid, `openrtb`), the winner's price is reserved instead,
        under the outcome's impression id, for that long at most (`bidding.store.reservations`):
        its impression is recorded when the reservation settles."""
        if not self.snapshot.ready():
            raise UpstreamUnavailable("the campaign snapshot is not loaded yet")
        refused: dict[str, ChargeOutcome] = {}
        below: list[Micros] = []

        def on_refused(campaign: Campaign, charge: ChargeResult) -> None:
            refused[campaign.id] = charge.outcome
            self._on_refused(campaign, charge)

        impression_id = str(uuid.uuid4())
        placement = self.snapshot.floors.get(request.placement_id, NO_FLOOR)
        ledger: BudgetLedger = self.ledger
        if window_s is not None:
            ledger = _Reserving(self.ledger, Hold(impression_id, window_s=window_s))
        try:
            decision = decide(
                self.snapshot.index,
                request,
                ledger,
                checks=self.checks,
                on_refused=on_refused,
                max_attempts=self._max_attempts,
                record=impression_recorder(
                    request, impression_id, at=self._clock(), correlation=correlation
                ),
                placement=placement,
                on_below_floor=lambda _campaign, floor: below.append(floor),
            )
        except LedgerNotReady:
            self._recovery.ensure()
            raise
        explanation = None
        if explain:  # after the auction, from what it saw: nothing more is charged
            won = [decision] if decision is not None else []
            explanation = self._explain(request, won, refused, placement)
            winners = explanation.pop("winners")
            explanation["winner"] = winners[0] if winners else None
        return BidOutcome(
            decision, impression_id, tuple(refused), below[0] if below else None, explanation
        )

    def _explain(
        self,
        request: BidRequest,
        won: Sequence[Decision],
        refused: dict[str, ChargeOutcome],
        placement: PlacementFloor,
        **more: Any,
    ) -> dict[str, Any]:
        """The winners with their prices, then each candidate's first reason; `more` goes to
        `explain` (a slot's duplicate check and sizes)."""
        return {
            "winners": [
                {"campaignId": d.campaign.id, "priceMicros": d.price.charge_micros} for d in won
            ],
            **explain(
                self.snapshot.index,
                request,
                winners=[d.campaign.id for d in won],
                refused=refused,
                daypart=self._daypart,
                budget_memo=self.refusals.eligible,
                pacing_memo=self.paced.eligible,
                floor_micros=effective_floor(placement, request),
                **more,
            ),
        }


@dataclass(frozen=True, slots=True)
class _Reserving:
    """The auction's ledger for an exchange's bid: each charge is a reservation under `hold`."""

    ledger: RedisBudgetLedger
    hold: Hold

    def charge(
        self,
        campaign: Campaign,
        price_micros: Micros,
        record: Sequence[bytes] = (),
        *,
        user_id: str | None = None,
    ) -> ChargeResult:
        return self.ledger.reserve(campaign, price_micros, record, user_id=user_id, hold=self.hold)
