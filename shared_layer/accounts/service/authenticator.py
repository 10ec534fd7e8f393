"""Who is calling: the request's ``Authorization: Bearer <key>``, checked.

Per request: the key's id is read from the key itself, its row is read from PostgreSQL (one
primary-key lookup, so a revocation counts at once on every replica), and the Argon2id hash is
checked only the first time this replica sees the key: verified keys are remembered in memory
by an HMAC of the key under a per-process random secret (never the key), at most
`cache_size` of them. The deployment's admin token (secret ``campaigns-admin-token``) is the
bootstrap admin key, compared in constant time.

Example::

    authenticate = Authenticator(AccountStore(database), bootstrap_token=settings.admin_token)
    caller = authenticate(request)      # Caller(key_id, role, advertiser_id), or 401
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from typing import Final

from shared_layer.accounts.domain.keys import parse_key
from shared_layer.accounts.store.accounts import AccountStore, verify
from shared_layer.kernel.access import BOOTSTRAP_KEY_ID, Caller
from shared_layer.kernel.errors import Unauthorized
from shared_layer.kernel.http import Request

__all__ = ["Authenticator"]

_BOOTSTRAP: Final = Caller(BOOTSTRAP_KEY_ID, "admin", None)


class Authenticator:
    def __init__(
        self, accounts: AccountStore, *, bootstrap_token: bytes, cache_size: int = 10_000
    ) -> None:
        self._accounts = accounts
        self._bootstrap = bootstrap_token
        self._cache_size = cache_size
        self._pepper = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, str] = OrderedDict()  # digest -> secret_hash
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Caller:
        scheme, _, token = request.header("authorization").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("send Authorization: Bearer <API key>")
        if hmac.compare_digest(token.encode(), self._bootstrap):
            caller = _BOOTSTRAP
        else:
            caller = self._check(token)
        request.annotate(keyId=caller.key_id, role=caller.role)
        return caller

    def _check(self, token: str) -> Caller:
        key_id = parse_key(token)
        record = self._accounts.key(key_id) if key_id is not None else None
        if record is None or record.revoked_at is not None:
            raise Unauthorized("the API key is not valid (unknown, malformed or revoked)")
        digest = hmac.new(self._pepper, token.encode(), hashlib.sha256).digest()
        with self._lock:
            known = self._verified.get(digest)
        if known != record.secret_hash:
            if not verify(record.secret_hash, token):
                raise Unauthorized("the API key is not valid (unknown, malformed or revoked)")
            with self._lock:
                self._verified[digest] = record.secret_hash
                while len(self._verified) > self._cache_size:
                    self._verified.popitem(last=False)
        return Caller(record.id, record.role, record.advertiser_id)
