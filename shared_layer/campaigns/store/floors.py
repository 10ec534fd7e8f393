"""Floor prices per placement in PostgreSQL (table ``placement_floors``, migrations 0006 and
0013).

`PlacementFloorStore`: list, get, put (insert or replace), delete. A floor is a CPM in micros
(DECIMAL(10, 4) in the table, as campaigns' cpm_bid), a clearing rule (first-price or
second-price) and the placement's duplicate level for several-slot requests. The admin API
writes here, then announces the change so every bid replica's snapshot reloads its floors
(campaigns.service.admin); the snapshot reads them with `all`.

Example::

    floors = PlacementFloorStore(database)
    floors.put(PlacementFloor(placement_id="placement-001", floor_cpm_micros=1_500_000))
    floors.all()          # [FloorRecord(...)]
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from shared_layer.kernel.models import PlacementFloor
from shared_layer.kernel.money import parse_micros, to_decimal
from shared_layer.kernel.storage.postgres import Database

__all__ = ["FloorRecord", "PlacementFloorStore"]

_SELECT: Final = (
    "SELECT placement_id, floor_cpm, clearing, duplicates, updated_at FROM placement_floors"
)


@dataclass(frozen=True, slots=True)
class FloorRecord:
    """A stored floor with the time it was last set (UTC)."""

    floor: PlacementFloor
    updated_at: datetime


class PlacementFloorStore:
    """The placement_floors table; thread-safe (pooled)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def all(self) -> list[FloorRecord]:
        """Every floor, by placement id."""
        return [_record(row) for row in self._db.run(_SELECT + " ORDER BY placement_id")]

    def floors(self) -> list[PlacementFloor]:
        """Every floor without its timestamps (what a bid replica's snapshot needs)."""
        return [record.floor for record in self.all()]

    def get(self, placement_id: str) -> FloorRecord | None:
        rows = self._db.run(_SELECT + " WHERE placement_id = :id", id=placement_id)
        return _record(rows[0]) if rows else None

    def put(self, floor: PlacementFloor) -> FloorRecord:
        """Insert or replace the placement's floor; returns it as stored."""
        rows = self._db.run(
            "INSERT INTO placement_floors (placement_id, floor_cpm, clearing, duplicates) "
            "VALUES (:id, :cpm, :clearing, :duplicates) "
            "ON CONFLICT (placement_id) DO UPDATE SET "
            "floor_cpm = EXCLUDED.floor_cpm, clearing = EXCLUDED.clearing, "
            "duplicates = EXCLUDED.duplicates, updated_at = now() AT TIME ZONE 'UTC' "
            "RETURNING placement_id, floor_cpm, clearing, duplicates, updated_at",
            id=floor.placement_id,
            cpm=to_decimal(floor.floor_cpm_micros),
            clearing=floor.clearing,
            duplicates=floor.duplicates,
        )
        return _record(rows[0])

    def delete(self, placement_id: str) -> bool:
        """Remove the placement's floor; False if it had none."""
        rows = self._db.run(
            "DELETE FROM placement_floors WHERE placement_id = :id RETURNING placement_id",
            id=placement_id,
        )
        return bool(rows)


def _record(row: list[object]) -> FloorRecord:
    placement_id, cpm, clearing, duplicates, updated_at = row
    floor = PlacementFloor(
        placement_id=str(placement_id),
        floor_cpm_micros=parse_micros(cpm),  # type: ignore[arg-type]
        clearing=clearing,  # type: ignore[arg-type]
        duplicates=duplicates,  # type: ignore[arg-type]
    )
    return FloorRecord(floor, updated_at)  # type: ignore[arg-type]
