"""HMAC-SHA256 signed tokens for URLs: the one scheme of click tokens and OpenRTB notice tokens.

A token is ``<version>.<base64url(payload)>.<base64url(HMAC-SHA256(key, version "." payload64))>``
(URL-safe, no padding). The version is signed too, so a token of one kind (``v1`` clicks, ``n1``
notices) is never taken for another. `open_token` checks the signature in constant time before
anything of the payload is read, and accepts only the canonical encoding (one token, one
spelling). What the payload means is the caller's (`clicks.domain.clicktoken`,
`openrtb.domain.notice_token`).

Example::

    token = seal(key, "n1", b'{"bid":"b-1"}')
    payload = open_token(key, "n1", token, max_chars=2048, kind="notice token")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Final

from shared_layer.kernel.errors import InvalidToken

__all__ = ["MIN_KEY_BYTES", "SIGNATURE_CHARS", "check_key", "encode", "open_token", "seal"]

MIN_KEY_BYTES: Final = 32
SIGNATURE_CHARS: Final = 43  # 32 bytes in unpadded base64url


def seal(key: bytes, version: str, payload: bytes, *, kind: str = "token") -> str:
    """`payload` signed with `key` (at least 32 bytes) under `version`."""
    check_key(key, kind)
    signed = f"{version}.{encode(payload)}"
    return f"{signed}.{encode(_mac(key, signed))}"


def open_token(key: bytes, version: str, token: object, *, max_chars: int, kind: str) -> bytes:
    """The payload of a genuine `token`, or `InvalidToken` saying the `kind` is malformed or
    its signature does not match."""
    check_key(key, kind)
    if not isinstance(token, str) or len(token) > max_chars or not token.isascii():
        raise InvalidToken(f"{kind} is malformed")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != version or len(parts[2]) != SIGNATURE_CHARS:
        raise InvalidToken(f"{kind} is malformed")
    signed = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_decode(parts[2], kind), _mac(key, signed)):
        raise InvalidToken(f"{kind} signature does not match")
    return _decode(parts[1], kind)


def check_key(key: bytes, kind: str = "token") -> None:
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"a {kind} key must be at least {MIN_KEY_BYTES} bytes")


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mac(key: bytes, signed: str) -> bytes:
    return hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()


def _decode(text: str, kind: str) -> bytes:
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken(f"{kind} is malformed") from exc
    if encode(decoded) != text:  # only the canonical encoding: one token, one spelling
        raise InvalidToken(f"{kind} is malformed")
    return decoded
