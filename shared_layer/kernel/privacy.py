"""Privacy signals and what they allow: one set of rules for every way a request reaches us.

An exchange's BidRequest (`openrtb`: ``regs``, ``user.consent``, ``device.lmt/dnt``) and a
publisher's call to `serve` or `bid` (``gdpr``, ``gdpr_consent``, ``us_privacy``, ``coppa``
parameters) carry the same signals; `rules` turns them into what we may do with the user:

"store": a frequency cap entry, the user's id in events and the export; "personalize": interests
and age targeting.

| signal                                   | store   | personalize |
|------------------------------------------|:-------:|:------:|
| none of the below                        | yes     | yes    |
| GDPR applies, no TCF v2 consent string, or one that does not decode | no | no |
| GDPR, purpose 1 and our vendor consented  | yes     | only with purposes 3 and 4 |
| GDPR, purpose 1 or our vendor missing     | no      | only with purposes 3 and 4 and our vendor |
| COPPA = 1                                | no      | no (user and device ids stripped) |
| ``lmt`` = 1 or ``dnt`` = 1               | no      | yes    |
| US privacy with opt-out of sale (``1YY-``: third character Y) | no | no |

Without storage the user's id is replaced by an anonymous one (`anonymous_user_id`, no frequency
cap entry is written for it, and events and the export carry it instead of the user's). Without
interests and age the ad is contextual: country, device and placement still target. GPP
(``gpp``, ``gpp_sid``) is read and carried but not decoded yet: where it is the only signal, no
rule applies (docs/openrtb.md says so). Our TCF vendor id is a setting (``TCF_VENDOR_ID``);
without one (unset or 0), no GDPR consent can name us, so GDPR requests are never stored.

TCF v2 strings are decoded by the ``iab-tcf-bitarray`` library (PyPI; a maintained fork of
``iab-tcf`` on ``bitarray``).

Example::

    allowed = rules(Signals(gdpr=True, consent="CP..."), vendor_id=1234)
    allowed.store_user, allowed.personalize
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import iab_tcf  # type: ignore[import-untyped]

__all__ = ["ANONYMOUS_PREFIX", "Allowed", "Signals", "anonymous_user_id", "is_anonymous", "rules"]

ANONYMOUS_PREFIX: Final = "anon:"
_MAX_ID: Final = 128
_STORAGE: Final = 1  # TCF purpose 1: store and/or access information on a device
_PROFILE_PURPOSES: Final = (3, 4)  # create and use a personalised ads profile


@dataclass(frozen=True, slots=True)
class Signals:
    """The privacy signals of one request, wherever they came from."""

    gdpr: bool | None = None
    consent: str | None = None
    us_privacy: str | None = None
    gpp: str | None = None
    gpp_sid: tuple[int, ...] = ()
    coppa: bool = False
    lmt: bool = False
    dnt: bool = False


@dataclass(frozen=True, slots=True)
class Allowed:
    """What the signals allow: keep anything about the user, and target by interests and age."""

    store_user: bool = True
    personalize: bool = True

    @property
    def reason(self) -> str:
        return "all" if self.store_user and self.personalize else "restricted"


def rules(signals: Signals, *, vendor_id: int | None) -> Allowed:
    """What we may do for a request with `signals` (the table in the module doc)."""
    if signals.coppa or _opted_out_of_sale(signals.us_privacy):
        return Allowed(store_user=False, personalize=False)
    store, personalize = True, True
    if signals.gdpr:
        store, personalize = _tcf(signals.consent, vendor_id)
    if signals.lmt or signals.dnt:
        store = False
    return Allowed(store, personalize)


def anonymous_user_id(request_id: str) -> str:
    """The id a request's user gets when nothing about them may be kept: unique per request."""
    return f"{ANONYMOUS_PREFIX}{request_id}"[:_MAX_ID]


def is_anonymous(user_id: str) -> bool:
    """Whether `user_id` was made by `anonymous_user_id` (no frequency cap entry is kept)."""
    return user_id.startswith(ANONYMOUS_PREFIX)


def _opted_out_of_sale(us_privacy: str | None) -> bool:
    # IAB CCPA string: version 1, notice given, opt-out of sale, LSPA covered; "-" unknown.
    return us_privacy is not None and len(us_privacy) == 4 and us_privacy[2] in "Yy"


def _tcf(consent: str | None, vendor_id: int | None) -> tuple[bool, bool]:
    """(store, personalize) under GDPR for a TCF v2 consent string."""
    if not consent or not vendor_id:  # 0 or None: we have no vendor id
        return False, False
    try:
        decoded = iab_tcf.decode(consent)
        if decoded.version != 2:
            return False, False
        vendor = bool(decoded.is_vendor_allowed(vendor_id))
        purposes = {p: bool(decoded.is_purpose_allowed(p)) for p in (_STORAGE, *_PROFILE_PURPOSES)}
    except Exception:  # a string the library cannot read is no consent
        return False, False
    store = vendor and purposes[_STORAGE]
    personalize = vendor and all(purposes[p] for p in _PROFILE_PURPOSES)
    return store, personalize
