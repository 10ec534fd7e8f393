"""How the platform tells what it is doing: one `==> ` line per step, flushed at once."""

from __future__ import annotations


def say(message: str) -> None:
    print(f"==> {message}", flush=True)
