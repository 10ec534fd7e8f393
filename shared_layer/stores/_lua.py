"""The Lua scripts of the Redis adapters live beside them as .lua files; this reads one."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent


def script(name: str) -> str:
    """The text of `name` (for example ``budget_charge.lua``) from this folder."""
    return (_HERE / name).read_text()
