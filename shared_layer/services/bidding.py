"""The bid use case: one auction over this replica's snapshot, charged and recorded atomically.

`Bidder.bid` runs `core.auction.decide` with the ledger (`stores.budget_ledger`), the eligibility
checks plus the refusal memo (campaigns whose budget refused today are skipped without asking
Redis), and the impression recorder (`stores.outbox`): the winning charge appends its impression
event to the outbox in the same Lua step. One impression id per request: at most one candidate
is charged. When the ledger turns out to have lost its data, the rebuild from PostgreSQL is
started before the error goes up (serve answers no fill meanwhile).

Example::

    bidder = Bidder(snapshot, ledger, recovery, clock=utc_now)
    outcome = bidder.bid(parse(BidRequest, body))   # outcome.decision is None: no bid (204)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from shared_layer.core.auction import Decision, decide
from shared_layer.core.budget import ChargeResult, RefusalMemo
from shared_layer.core.clock import Clock, utc_now
from shared_layer.core.correlation import Correlation
from shared_layer.core.errors import UpstreamUnavailable
from shared_layer.core.models import BidRequest, Campaign
from shared_layer.core.targeting import ELIGIBILITY_CHECKS
from shared_layer.services.budget_recovery import BudgetRecovery
from shared_layer.services.campaign_snapshot import CampaignSnapshot
from shared_layer.stores.budget_ledger import LedgerNotReady, RedisBudgetLedger
from shared_layer.stores.outbox import impression_recorder

__all__ = ["MAX_CHARGE_ATTEMPTS", "BidOutcome", "Bidder"]

MAX_CHARGE_ATTEMPTS = 50  # Redis round trips per request, at most


@dataclass(frozen=True, slots=True)
class BidOutcome:
    """The auction's answer for one request, with what the metrics need to know."""

    decision: Decision | None
    impression_id: str
    refused: tuple[str, ...]

    @property
    def label(self) -> Literal["bid", "budget-exhausted", "no-candidate"]:
        if self.decision is not None:
            return "bid"
        return "budget-exhausted" if self.refused else "no-candidate"


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
        self.checks = (*ELIGIBILITY_CHECKS, self.refusals.eligible)

    def ready(self) -> bool:
        return self.snapshot.ready()

    def bid(self, request: BidRequest, correlation: Correlation | None = None) -> BidOutcome:
        """The winner charged and its impression recorded (with `correlation`, the serve
        request's ids, for the Kafka record's headers), or no decision; errors go up."""
        if not self.snapshot.ready():
            raise UpstreamUnavailable("the campaign snapshot is not loaded yet")
        refused: list[str] = []

        def on_refused(campaign: Campaign, charge: ChargeResult) -> None:
            refused.append(campaign.id)
            self.refusals.remember(campaign, charge)

        impression_id = str(uuid.uuid4())
        try:
            decision = decide(
                self.snapshot.index,
                request,
                self.ledger,
                checks=self.checks,
                on_refused=on_refused,
                max_attempts=self._max_attempts,
                record=impression_recorder(
                    request, impression_id, at=self._clock(), correlation=correlation
                ),
            )
        except LedgerNotReady:
            self._recovery.ensure()
            raise
        return BidOutcome(decision, impression_id, tuple(refused))
