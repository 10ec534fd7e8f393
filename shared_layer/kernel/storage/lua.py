"""A store's Lua scripts live beside it as .lua files, in its feature's store folder; this reads
one."""

from __future__ import annotations

from pathlib import Path


def script(beside: str, name: str) -> str:
    """The text of `name` in the folder of the module `beside` (its ``__file__``).

    Example::

        CHARGE_SCRIPT = script(__file__, "budget_charge.lua")
    """
    return (Path(beside).parent / name).read_text()
