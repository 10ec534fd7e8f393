"""Deploying the stacks through the real gateway with faas-cli, as a user would.

Every deployment carries its image digest as an annotation; a function already deployed with
the same digest is left alone, so a second `make up` restarts no replica.
"""

from __future__ import annotations

from . import faas_cli, function_secrets, gateway_api, images
from .profile import Profile
from .progress import say

DIGEST_ANNOTATION = "com.adserver.image-digest"


def deploy(profile: Profile) -> None:
    """faas-cli deploy each function whose image changed, then wait for available replicas."""
    faas_cli.login(profile)
    images.prepare_templates()
    function_secrets.ensure(profile)
    names = []
    for stack in images.STACKS:
        for fn in images.read_stack(stack):
            names.append(fn.name)
            digest = images.resolved_digest(fn, profile.images_dir)
            deployed = gateway_api.function_status(profile, fn.name) or {}
            if (deployed.get("annotations") or {}).get(DIGEST_ANNOTATION) == digest:
                say(f"function {fn.name}: unchanged ({fn.image} @ {digest})")
                continue
            say(f"function {fn.name}: deploying {fn.image} @ {digest}")
            annotation = f"{DIGEST_ANNOTATION}={digest}"
            args = ["deploy", "-f", str(stack), "--filter", fn.name, "--annotation", annotation]
            faas_cli.run(profile, args)
    for name in names:
        gateway_api.wait_available(profile, name)
        say(f"function {name}: available")
