"""A released migration is history: databases record its checksum when they apply it, and the
runner refuses to start when a file no longer matches (an edited comment included). This test
stops such an edit before it ships; a change goes into a new migration file instead."""

from __future__ import annotations

from localplatform import migrations

# sha256 of each released file, as `schema_migrations.checksum` records it. Add a line for a new
# migration when it is released; never change one.
RELEASED = {
    "0001_seed_schema.sql": "a3d52a302e3fd1b926b22ca092fb3868fbb6654830802f20c8d458cb26e27893",
    "0002_money_at_micro_precision.sql": (
        "83710401fa0828810dbd43bd9b184c419c67bccb34c72875672f2825d6a41bab"
    ),
    "0003_drop_duplicate_metrics_index.sql": (
        "42169b9274a695478995e7931c546c65c1b2e7c6860baf795383addbebaa1b4c"
    ),
    "0004_campaign_admin_integrity.sql": (
        "bfb66c44f1d0152ecdfccfa3b2653acfdc1fcb6bcb581481368bf5bff9dabab2"
    ),
    "0005_events_log_partitioned_by_day.sql": (
        "2fb5961a26ff886575e01c3c888e627107d3482897f0859547b6e865d320ef1e"
    ),
    "0006_pacing_frequency_caps_floors.sql": (
        "06380c035ef538129fc898e635af58277d89b7839adca729e62c14dafb8bbe66"
    ),
    "0008_events_log_arrival_index.sql": (
        "a5b6e68529a5b38457466f285bed72d32bd0edd6f04847f2e2ca7214fb1d6ae7"
    ),
    "0009_log_export.sql": "e6840843263edf2d0545428f69db3f51039d200d8c91f7ac6cb394cd5a355614",
}


def test_released_migrations_are_unchanged() -> None:
    on_disk = {m.file_name: m.checksum for m in migrations.discover()}
    changed = {name for name, checksum in RELEASED.items() if on_disk.get(name) != checksum}
    assert not changed, f"released migrations changed or missing: {sorted(changed)}"


def test_every_migration_is_recorded_here_once_released() -> None:
    unrecorded = {m.file_name for m in migrations.discover()} - set(RELEASED)
    assert not unrecorded, f"record the checksum of {sorted(unrecorded)} in RELEASED"
