"""Advertisers and API keys in PostgreSQL (tables ``advertisers`` and ``api_keys``, migration
0011), and the Argon2id hashing of keys.

A key is stored as its public id and an Argon2id hash (argon2-cffi, parameters below); the key
itself never reaches the table or a log. `verify` is the costly step (19 MiB; tens of ms, 250
ms on a loaded 2-core machine), so `service.authenticator` remembers keys it has verified and,
per request, reads only the row.

Example::

    accounts = AccountStore(database)
    advertiser = accounts.create_advertiser("Acme", currency="EUR", time_zone="Europe/Paris")
    minted = accounts.create_key("advertiser", advertiser.id, label="console")
    accounts.key("3f2a...")        # KeyRecord, or None
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared_layer.accounts.domain.keys import MintedKey, mint_key
from shared_layer.kernel.access import Role
from shared_layer.kernel.storage.postgres import Database

__all__ = ["AccountStore", "AdvertiserRecord", "KeyRecord", "verify"]

# OWASP's Argon2id minimum (19 MiB, 2 passes, 1 lane): the secret is 256 random bits, so the
# hash guards against a leaked table, not a guessable password; the cost stays at first use.
_HASHER: Final = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_ADVERTISER_COLUMNS: Final = " id::text, name, currency, time_zone, created_at"
_SELECT_ADVERTISERS: Final = "SELECT" + _ADVERTISER_COLUMNS + " FROM advertisers"
_KEY_COLUMNS: Final = " id, role, advertiser_id::text, label, secret_hash, created_at, revoked_at"
_SELECT_KEYS: Final = "SELECT" + _KEY_COLUMNS + " FROM api_keys"


@dataclass(frozen=True, slots=True)
class AdvertiserRecord:
    id: str
    name: str
    currency: str
    time_zone: str
    created_at: datetime

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "currency": self.currency,
            "timeZone": self.time_zone,
            "createdAt": self.created_at.isoformat() + "Z",
        }


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    role: Role
    advertiser_id: str | None
    label: str
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None

    def json(self) -> dict[str, Any]:
        """The key as lists show it: never the key, never its hash."""
        return {
            "id": self.id,
            "role": self.role,
            "advertiserId": self.advertiser_id,
            "label": self.label,
            "createdAt": self.created_at.isoformat() + "Z",
            "revokedAt": self.revoked_at.isoformat() + "Z" if self.revoked_at else None,
        }


class AccountStore:
    """The advertisers and api_keys tables; thread-safe (pooled)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create_advertiser(
        self, name: str, *, currency: str, time_zone: str, advertiser_id: str | None = None
    ) -> AdvertiserRecord:
        """A new advertiser; `advertiser_id` registers the id its campaigns already name
        (Conflict, 409, if an advertiser has it)."""
        rows = self._db.run(
            "INSERT INTO advertisers (id, name, currency, time_zone) "
            "VALUES (COALESCE(CAST(:id AS uuid), gen_random_uuid()), :n, :c, :tz) "
            "RETURNING id::text, name, currency, time_zone, created_at",
            id=advertiser_id,
            n=name,
            c=currency,
            tz=time_zone,
        )
        return AdvertiserRecord(*rows[0])

    def advertiser(self, advertiser_id: str) -> AdvertiserRecord | None:
        rows = self._db.run(
            _SELECT_ADVERTISERS + " WHERE id = CAST(:id AS uuid)",
            id=advertiser_id,
        )
        return AdvertiserRecord(*rows[0]) if rows else None

    def advertisers(self) -> list[AdvertiserRecord]:
        rows = self._db.run(_SELECT_ADVERTISERS + " ORDER BY name, id")
        return [AdvertiserRecord(*row) for row in rows]

    def create_key(self, role: Role, advertiser_id: str | None, *, label: str) -> MintedKey:
        """A new key, stored as its id and hash; the returned key is the only copy."""
        minted = mint_key()
        self._db.run(
            "INSERT INTO api_keys (id, role, advertiser_id, label, secret_hash) "
            "VALUES (:id, :role, CAST(:advertiser AS uuid), :label, :hash)",
            id=minted.key_id,
            role=role,
            advertiser=advertiser_id,
            label=label,
            hash=_HASHER.hash(minted.key),
        )
        return minted

    def key(self, key_id: str) -> KeyRecord | None:
        rows = self._db.run(_SELECT_KEYS + " WHERE id = :id", id=key_id)
        return KeyRecord(*rows[0]) if rows else None

    def keys(self, advertiser_id: str | None = None) -> list[KeyRecord]:
        """Every key (revoked ones too), newest first; one advertiser's when given."""
        where = "" if advertiser_id is None else " WHERE advertiser_id = CAST(:a AS uuid)"
        params = {} if advertiser_id is None else {"a": advertiser_id}
        rows = self._db.run(_SELECT_KEYS + where + " ORDER BY created_at DESC, id", **params)
        return [KeyRecord(*row) for row in rows]

    def revoke(self, key_id: str) -> KeyRecord | None:
        """Revoke the key (kept, with revoked_at); None if there is no such key."""
        rows = self._db.run(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now() AT TIME ZONE 'UTC') "
            "WHERE id = :id "
            "RETURNING id, role, advertiser_id::text, label, secret_hash, created_at, revoked_at",
            id=key_id,
        )
        return KeyRecord(*rows[0]) if rows else None


def verify(secret_hash: str, key: str) -> bool:
    """Whether `key` is the one `secret_hash` was made from (Argon2id, constant time)."""
    try:
        return _HASHER.verify(secret_hash, key)
    except (VerificationError, InvalidHashError):
        return False
