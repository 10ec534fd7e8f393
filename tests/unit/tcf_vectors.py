"""TCF v2 consent strings made to order for the privacy tests, following the IAB's "TCF v2.2
consent string" core segment layout field by field, so each test says which purposes and which
vendors consented. The decoding under test is the library's (kernel.privacy), not this."""

from __future__ import annotations

import base64

VENDOR = 1234  # our TCF vendor id in the tests
DECISECONDS = 16_700_000_000  # 2022-12-02, any moment will do


def consent_string(purposes: set[int], vendors: set[int], *, version: int = 2) -> str:
    bits = ""

    def put(value: int, width: int) -> None:
        nonlocal bits
        bits += format(value, f"0{width}b")

    def field(members: set[int], width: int) -> None:
        nonlocal bits
        bits += "".join("1" if n in members else "0" for n in range(1, width + 1))

    put(version, 6)
    put(DECISECONDS, 36)  # created
    put(DECISECONDS, 36)  # last updated
    put(7, 12)  # CMP id
    put(1, 12)  # CMP version
    put(1, 6)  # consent screen
    put(4, 6), put(13, 6)  # consent language "EN"
    put(150, 12)  # vendor list version
    put(4, 6)  # TCF policy version
    put(1, 1), put(0, 1)  # service specific, non-standard texts
    field(set(), 12)  # special feature opt-ins
    field(purposes, 24)  # purposes consent
    field(set(), 24)  # purposes legitimate interest
    put(0, 1)  # purpose one treatment
    put(3, 6), put(4, 6)  # publisher country "DE"
    top = max(vendors, default=0)
    put(top, 16), put(0, 1), field(vendors, top)  # vendor consents, as a bit field
    put(0, 16), put(0, 1)  # vendor legitimate interests: none
    put(0, 12)  # no publisher restrictions
    bits += "0" * (-len(bits) % 8)
    raw = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


ALL = consent_string({1, 2, 3, 4, 7}, {VENDOR, 5})
STORAGE_ONLY = consent_string({1}, {VENDOR})
PROFILE_ONLY = consent_string({3, 4}, {VENDOR})
NOT_OUR_VENDOR = consent_string({1, 3, 4}, {5})
NOTHING = consent_string(set(), set())
