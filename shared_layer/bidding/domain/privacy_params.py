"""A publisher's privacy parameters on `serve` and `bid`: the same rules as an exchange's signals.

``gdpr`` (0 or 1), ``gdpr_consent`` (a TCF v2 string), ``us_privacy`` (the IAB US privacy
string, e.g. ``1YY-``) and ``coppa`` (0 or 1) are query parameters of ``GET /function/serve`` and
``POST /function/bid``. `kernel.privacy.rules` decides what they allow, exactly as for
`openrtb`: without storage the user's id is replaced by one of this request alone (no frequency
cap entry, no user id in events or the export), without personalisation the request loses its
interests and age (contextual targeting only).

Example::

    request = with_privacy(request, {"gdpr": "1"}, vendor_id=None, request_id="r-1")
    request.user_id      # "anon:r-1"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, TypeVar

from shared_layer.kernel import privacy
from shared_layer.kernel.errors import ValidationFailed
from shared_layer.kernel.models import BidRequest, SlotsRequest, UserAttributes

__all__ = ["PRIVACY_PARAMETERS", "privacy_signals", "with_privacy"]

PRIVACY_PARAMETERS: Final = ("gdpr", "gdpr_consent", "us_privacy", "coppa")
_FLAGS: Final = {"0": False, "1": True}
_MAX_TEXT: Final = 4096

AnyRequest = TypeVar("AnyRequest", BidRequest, SlotsRequest)


def privacy_signals(params: Mapping[str, str]) -> privacy.Signals:
    """The signals of `params`; a flag other than 0 or 1, or an overlong string, is a 400."""
    problems = [
        name for name in ("gdpr", "coppa") if name in params and params[name] not in _FLAGS
    ] + [
        name
        for name in ("gdpr_consent", "us_privacy")
        if name in params and len(params[name]) > _MAX_TEXT
    ]
    if problems:
        raise ValidationFailed(
            f"invalid request: {', '.join(problems)}: gdpr and coppa are 0 or 1, strings at most"
            f" {_MAX_TEXT} characters",
            problems,
        )
    gdpr = params.get("gdpr")
    return privacy.Signals(
        gdpr=None if gdpr is None else _FLAGS[gdpr],
        consent=params.get("gdpr_consent") or None,
        us_privacy=params.get("us_privacy") or None,
        coppa=params.get("coppa") == "1",
    )


def with_privacy(
    request: AnyRequest, params: Mapping[str, str], *, vendor_id: int | None, request_id: str
) -> AnyRequest:
    """`request` (one slot or several) as the privacy parameters in `params` allow the auction
    to see it."""
    allowed = privacy.rules(privacy_signals(params), vendor_id=vendor_id)
    changes: dict[str, object] = {}
    if not allowed.store_user:
        changes["user_id"] = privacy.anonymous_user_id(request_id)
    if not allowed.personalize:
        changes["user_attributes"] = UserAttributes()
    return request.model_copy(update=changes) if changes else request
