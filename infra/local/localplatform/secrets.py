"""Secrets of the local platform: generated once, kept in files (0600), never printed whole."""

from __future__ import annotations

import secrets
from pathlib import Path

from .profile import Profile

ADMIN_USER = "admin"


def basic_auth_dir(profile: Profile) -> Path:
    """Where the gateway and the provider read basic-auth-user and basic-auth-password."""
    return profile.secrets_dir


def ensure_secret(profile: Profile, name: str, nbytes: int = 24) -> Path:
    """Create secrets/<name> with a random URL-safe value unless it exists."""
    profile.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = profile.secrets_dir / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path


def ensure_basic_auth(profile: Profile) -> tuple[str, Path]:
    user = profile.secrets_dir / "basic-auth-user"
    profile.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not user.exists():
        user.write_text(ADMIN_USER)
        user.chmod(0o600)
    return user.read_text().strip(), ensure_secret(profile, "basic-auth-password")


def read(profile: Profile, name: str) -> str:
    return (profile.secrets_dir / name).read_text().strip()
