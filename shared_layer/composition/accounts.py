"""Who is calling, wired: the accounts feature's key check and write limit for a function.

Example::

    calls = account_checks(database, redis_client, bootstrap_token=token, writes_per_minute=600)
    caller = calls.authenticate(request)      # Caller, or 401
    calls.limit_writes(caller)                 # 429 past the key's writes a minute
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared_layer.accounts.service.authenticator import Authenticator
from shared_layer.accounts.store.accounts import AccountStore
from shared_layer.accounts.store.rate_limit import WriteRateLimit
from shared_layer.kernel.access import BOOTSTRAP_KEY_ID, Caller
from shared_layer.kernel.storage.postgres import Database

__all__ = ["AccountChecks", "account_checks"]


@dataclass(frozen=True)
class AccountChecks:
    accounts: AccountStore
    authenticate: Authenticator
    limiter: WriteRateLimit | None

    def time_zone_of(self, caller: Caller) -> str | None:
        """The caller's advertiser's time zone (reports' default); None for admin keys."""
        record = self.accounts.advertiser(caller.advertiser_id) if caller.advertiser_id else None
        return record.time_zone if record is not None else None

    def limit_writes(self, caller: Caller) -> None:
        """Count a write; the bootstrap admin token (the operator's) is not limited."""
        if self.limiter is not None and caller.key_id != BOOTSTRAP_KEY_ID:
            self.limiter.check(caller.key_id)


def account_checks(
    database: Database,
    redis_client: Any | None,
    *,
    bootstrap_token: bytes,
    writes_per_minute: int = 0,
) -> AccountChecks:
    """Keys checked against `database`; writes limited in `redis_client` (0: no limit)."""
    accounts = AccountStore(database)
    limiter = (
        WriteRateLimit(redis_client, writes_per_minute)
        if redis_client is not None and writes_per_minute > 0
        else None
    )
    return AccountChecks(
        accounts, Authenticator(accounts, bootstrap_token=bootstrap_token), limiter
    )
