"""The seam a reader of the pipeline's progress implements (`store.progress` over Kafka).

Example::

    def rebuild_when_counted(progress: PipelineProgress) -> None:
        if progress.drained():
            ...
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["PipelineProgress"]


class PipelineProgress(Protocol):
    """Whether every impression event already in Kafka has been counted in PostgreSQL."""

    def drained(self) -> bool: ...
