"""The OpenFaaS gateway's /system API as the platform uses it: what is deployed, and waiting
until a function has available replicas. Basic auth from the profile's secret files."""

from __future__ import annotations

import time
from typing import Any

import requests

from . import secrets
from .profile import Profile

FUNCTION_READY_TIMEOUT_S = 90.0


def _auth(profile: Profile) -> tuple[str, str]:
    user, password_file = secrets.ensure_basic_auth(profile)
    return user, password_file.read_text().strip()


def system(profile: Profile, method: str, path: str) -> Any:
    """`GET /system/functions` and friends (the decoded JSON); an HTTP error raises."""
    r = requests.request(method, f"{profile.gateway_url}{path}", auth=_auth(profile), timeout=5)
    r.raise_for_status()
    return r.json()


def function_status(profile: Profile, name: str) -> dict | None:
    """The gateway's view of one function (replicas, annotations, ...); None if unknown."""
    try:
        r = requests.get(
            f"{profile.gateway_url}/system/function/{name}", auth=_auth(profile), timeout=2
        )
    except requests.RequestException:
        return None
    return r.json() if r.ok else None


def wait_available(
    profile: Profile, name: str, minimum: int = 1, timeout_s: float = FUNCTION_READY_TIMEOUT_S
) -> dict:
    """Until the function has `minimum` available replicas; FAILED after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    status: dict = {}
    while time.monotonic() < deadline:
        status = function_status(profile, name) or {}
        if status.get("availableReplicas", 0) >= minimum:
            return status
        time.sleep(0.25)
    raise SystemExit(
        f"FAILED: function {name} has {status.get('availableReplicas', 0)} available replicas "
        f"after {timeout_s:.0f}s; see {profile.state_dir / 'provider' / 'logs'}"
    )
