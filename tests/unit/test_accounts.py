"""Accounts, pure: what each role may do, the key format, and the key check with its cache."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from types import SimpleNamespace

import pytest

from shared_layer.accounts.domain.keys import mint_key, parse_key
from shared_layer.accounts.service.authenticator import Authenticator
from shared_layer.accounts.store import accounts as account_store
from shared_layer.accounts.store.accounts import KeyRecord
from shared_layer.kernel.access import NOBODY, Caller, advertiser_scope, require, require_owner
from shared_layer.kernel.errors import Forbidden, NotFound, Unauthorized
from shared_layer.kernel.http import request_from_event

A = "0b6f7d59-2b0c-4b5e-9a51-6f1e1f0c2a01"
B = "7e1d2c3b-4a59-4f68-8e7d-1c2b3a4f5e6d"
ADMIN = Caller("k-admin", "admin", None)
ADVERTISER_A = Caller("k-a", "advertiser", A)
REPORTING_A = Caller("k-r", "reporting", A)


@pytest.mark.parametrize(
    ("caller", "allowed"),
    [
        (ADMIN, {"read", "write", "report", "admin"}),
        (ADVERTISER_A, {"read", "write", "report"}),
        (REPORTING_A, {"read", "report"}),
    ],
)
def test_each_role_may_do_exactly_its_actions(caller, allowed):
    for action in ("read", "write", "report", "admin"):
        if action in allowed:
            require(caller, action)
        else:
            with pytest.raises(Forbidden):
                require(caller, action)


def test_another_advertisers_campaign_is_not_found_not_forbidden():
    require_owner(ADMIN, B, "campaign x")
    require_owner(ADVERTISER_A, A.upper(), "campaign x")
    for caller in (ADVERTISER_A, REPORTING_A):
        with pytest.raises(NotFound):
            require_owner(caller, B, "campaign x")


def test_a_list_is_scoped_to_the_keys_advertiser_whatever_it_asks():
    assert advertiser_scope(ADMIN, None) is None and advertiser_scope(ADMIN, B) == B
    assert advertiser_scope(ADVERTISER_A, None) == A
    assert advertiser_scope(ADVERTISER_A, A) == A
    assert advertiser_scope(ADVERTISER_A, B) == NOBODY
    # No campaign can carry it: an admin may give one the nil UUID, which must not show then.
    with pytest.raises(ValueError):
        uuid.UUID(NOBODY)


def test_a_minted_key_names_its_id_and_nothing_else_parses():
    minted = mint_key()
    assert parse_key(minted.key) == minted.key_id and len(minted.key_id) == 16
    assert mint_key().key != minted.key
    for bad in ("", "adk_", minted.key + "x", minted.key.replace("adk_", "ak_"), "Bearer x"):
        assert parse_key(bad) is None


class _Keys:
    """The store's one read the authenticator makes, in memory."""

    def __init__(self) -> None:
        self.rows: dict[str, KeyRecord] = {}

    def add(self, role, advertiser, revoked=False) -> str:
        minted = mint_key()
        self.rows[minted.key_id] = KeyRecord(
            minted.key_id,
            role,
            advertiser,
            "",
            account_store._HASHER.hash(minted.key),
            datetime(2026, 12, 1),
            datetime(2026, 12, 2) if revoked else None,
        )
        return minted.key

    def key(self, key_id):
        return self.rows.get(key_id)


def _request(authorization: str | None):
    headers = {"Authorization": authorization} if authorization else {}
    event = SimpleNamespace(method="GET", path="/", body=b"", headers=headers, query={})
    return request_from_event(event)


def test_keys_are_checked_once_per_replica_and_revocation_counts_at_once(monkeypatch):
    keys = _Keys()
    authenticate = Authenticator(keys, bootstrap_token=b"bootstrap-token-1234")  # type: ignore[arg-type]
    key = keys.add("advertiser", A)
    verified = []
    real_verify = account_store.verify
    monkeypatch.setattr(
        "shared_layer.accounts.service.authenticator.verify",
        lambda h, k: verified.append(k) or real_verify(h, k),
    )
    assert authenticate(_request(f"Bearer {key}")) == Caller(key[4:20], "advertiser", A)
    assert authenticate(_request(f"Bearer {key}")).advertiser_id == A
    assert len(verified) == 1  # the second request hit the cache
    row = keys.rows[key[4:20]]
    keys.rows[row.id] = replace(row, revoked_at=datetime(2026, 12, 3))
    with pytest.raises(Unauthorized):
        authenticate(_request(f"Bearer {key}"))


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic YTpi", "Bearer ", "Bearer not-a-key", "Bearer adk_0123456789abcdef_" + "x" * 43],
)
def test_no_key_or_an_unknown_one_is_401(authorization):
    authenticate = Authenticator(_Keys(), bootstrap_token=b"bootstrap-token-1234")  # type: ignore[arg-type]
    with pytest.raises(Unauthorized):
        authenticate(_request(authorization))


def test_a_known_id_with_another_secret_is_401_and_the_bootstrap_token_is_admin():
    keys = _Keys()
    key = keys.add("reporting", B)
    authenticate = Authenticator(keys, bootstrap_token=b"bootstrap-token-1234")  # type: ignore[arg-type]
    forged = key[:21] + ("A" if key[21] != "A" else "B") + key[22:]
    with pytest.raises(Unauthorized):
        authenticate(_request(f"Bearer {forged}"))
    assert authenticate(_request("Bearer bootstrap-token-1234")).role == "admin"
    revoked = keys.add("advertiser", A, revoked=True)
    with pytest.raises(Unauthorized):
        authenticate(_request(f"Bearer {revoked}"))
