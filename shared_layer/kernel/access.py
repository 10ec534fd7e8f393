"""Who a request comes from, and what each role may do: one table every route asks.

The callers are the API keys of advertiser accounts (shared_layer.accounts checks them); the
rules are here, beside the HTTP edge, because the campaigns API and the reports both apply them.

- admin: every advertiser's campaigns and reports, advertisers, keys and floors.
- advertiser: its own campaigns (read and write) and its own reports.
- reporting: its own campaigns and reports, read only.

Another advertiser's campaign is answered as if it did not exist (404, so ids are not
confirmed); an action the role does not have is a 403.

Example::

    require(caller, "write")                 # Forbidden for a reporting key
    require_owner(caller, campaign.advertiser_id, f"campaign {campaign.id}")  # NotFound
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

from shared_layer.kernel.errors import Forbidden, NotFound

__all__ = [
    "BOOTSTRAP_KEY_ID",
    "NOBODY",
    "ROLES",
    "Action",
    "Caller",
    "Role",
    "advertiser_scope",
    "require",
    "require_owner",
]

Role = Literal["admin", "advertiser", "reporting"]
ROLES: Final[tuple[str, ...]] = get_args(Role)
Action = Literal["read", "write", "report", "admin"]
BOOTSTRAP_KEY_ID: Final = "bootstrap"  # the deployment's admin token, from its secret file
# Not a UUID: no campaign can carry it (an admin may give one the nil UUID), so a list or a
# report scoped to it is empty.
NOBODY: Final = "nobody"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from: the key's id, its role, its advertiser (None for admin)."""

    key_id: str
    role: Role
    advertiser_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_ALLOWED: Final[dict[Role, frozenset[str]]] = {
    "admin": frozenset({"read", "write", "report", "admin"}),
    "advertiser": frozenset({"read", "write", "report"}),
    "reporting": frozenset({"read", "report"}),
}
_WHAT: Final[dict[str, str]] = {
    "read": "read campaigns",
    "write": "change campaigns",
    "report": "read reports",
    "admin": "manage accounts, keys and floors",
}


def require(caller: Caller, action: Action) -> None:
    """A 403 unless the caller's role may do `action`."""
    if action not in _ALLOWED[caller.role]:
        raise Forbidden(f"a {caller.role} key may not {_WHAT[action]}")


def require_owner(caller: Caller, advertiser_id: str, what: str) -> None:
    """A 404 (as for an unknown id) unless the caller is admin or `advertiser_id`'s own key."""
    if not caller.is_admin and advertiser_id.lower() != (caller.advertiser_id or "").lower():
        raise NotFound(f"{what} does not exist")


def advertiser_scope(caller: Caller, requested: str | None) -> str | None:
    """The advertiser a list may show: the caller's own for a non-admin key, whatever the
    query asked for (None: every advertiser) for admin. A non-admin asking for another
    advertiser gets its own scope and an empty intersection, never the other's rows."""
    if caller.is_admin:
        return requested
    own = caller.advertiser_id or ""
    if requested is not None and requested.lower() != own.lower():
        return NOBODY
    return own
