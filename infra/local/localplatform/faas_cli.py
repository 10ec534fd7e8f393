"""faas-cli as the platform runs it: the pinned binary, its own config in the state directory,
and the services' addresses that stack.yml's ${VARS} resolve to."""

from __future__ import annotations

import os
import subprocess

from . import secrets, toolchain
from .profile import REPO_ROOT, Profile


def path() -> str:
    return str(toolchain.bin_path(toolchain.FAAS_CLI.name))


def service_env(profile: Profile) -> dict[str, str]:
    """Where functions find the backing services: the profile's addresses on the bridge,
    unless DATABASE_URL, REDIS_URL, KAFKA_BROKERS, GATEWAY_URL, BID_URL or CLICK_BASE_URL are set in
    the environment (to run the same functions against docker-compose services or a
    cluster's). The test platform always uses its own services: its test process has the
    host-side addresses in those variables, which replicas could not reach."""
    own = profile.service_env()
    if profile.host_netns is not None:
        return own
    return {key: os.environ.get(key, value) for key, value in own.items()}


def env(profile: Profile) -> dict[str, str]:
    """faas-cli's own config in the state dir; stack ${VARS} resolve to service_env()."""
    return {
        **os.environ,
        **service_env(profile),
        "OPENFAAS_CONFIG": str(profile.state_dir / "faas-cli"),
        "OPENFAAS_URL": profile.gateway_url,
    }


def run(profile: Profile, args: list[str], stdin: str | None = None) -> None:
    """`faas-cli <args> --gateway <the profile's>`; FAILED with its output if it fails."""
    argv = [path(), *args, "--gateway", profile.gateway_url]
    result = subprocess.run(
        argv, env=env(profile), input=stdin, capture_output=True, text=True, cwd=REPO_ROOT
    )
    if result.returncode != 0:
        raise SystemExit(f"FAILED: faas-cli {' '.join(args[:2])}: {result.stdout}{result.stderr}")


def login(profile: Profile) -> None:
    user, password_file = secrets.ensure_basic_auth(profile)
    run(profile, ["login", "-u", user, "--password-stdin"], stdin=password_file.read_text())
