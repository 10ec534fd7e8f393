"""API keys: their format, and how a new one is made.

A key is ``adk_<id>_<secret>``: `id` (16 hex characters) is public and names the stored row, so
a request costs one indexed lookup and one hash check, never a scan over every key's hash;
`secret` is 32 random bytes (URL-safe base64). Only an Argon2id hash of the whole key is kept.

Example::

    minted = mint_key()                 # MintedKey(key_id="3f2a...", key="adk_3f2a..._...")
    parse_key(minted.key)               # "3f2a..." (the id), or None for anything else
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MintedKey",
    "mint_key",
    "parse_key",
]

_PREFIX: Final = "adk_"
_KEY: Final = re.compile(r"^adk_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True, slots=True)
class MintedKey:
    key_id: str
    key: str  # shown once, to whoever created it; never stored, never logged


def mint_key() -> MintedKey:
    key_id = secrets.token_hex(8)
    return MintedKey(key_id, f"{_PREFIX}{key_id}_{secrets.token_urlsafe(32)}")


def parse_key(text: str) -> str | None:
    """The key id of a well-formed key, else None (the caller then gets a 401)."""
    match = _KEY.fullmatch(text)
    return match.group(1) if match else None
