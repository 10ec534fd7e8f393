"""OpenFaaS secrets: every secret a stack names exists in the gateway, made from its file.

A secret file already in the state dir (postgres-password, written by the PostgreSQL
component) is used as it is; any other is generated once (secrets.py). Values never reach a
command line: faas-cli reads them from the file.
"""

from __future__ import annotations

from . import faas_cli, gateway_api, images, secrets
from .profile import Profile
from .progress import say


def ensure(profile: Profile) -> None:
    wanted = sorted(
        {name for stack in images.STACKS for fn in images.read_stack(stack) for name in fn.secrets}
    )
    existing = {s["name"] for s in (gateway_api.system(profile, "GET", "/system/secrets") or [])}
    for name in wanted:
        path = secrets.ensure_secret(profile, name)
        if name not in existing:
            faas_cli.run(profile, ["secret", "create", name, "--from-file", str(path)])
            say(f"secret {name}: created")
