"""A released migration is history: databases record its checksum when they apply it, and the
runner refuses to start when a file no longer matches. This test stops such an edit before it
ships; a change goes into a new migration file instead. The only exception is a rewording of the
comments, declared in `migrations.REWORDED` with the checksum it replaces and the checksum of the
statements, which the runner and this test hold to."""

from __future__ import annotations

from localplatform import migrations

# sha256 of each released file, as `schema_migrations.checksum` records it. Add a line for a new
# migration when it is released; never change one.
RELEASED = {
    "0001_seed_schema.sql": "6ef1a6b74713edc5d2c4ccab205036d3ee7165e899d048e21081d9d29355ef25",
    "0002_money_at_micro_precision.sql": (
        "c041b63293b9213453379dc88d244e450740b625dff6fddab5f9b3f18f8d415b"
    ),
    "0003_drop_duplicate_metrics_index.sql": (
        "c9d93234ffa0f7684cfed6d568dcfdd950ec1db02648f1f6cfc585fe7c988920"
    ),
    "0004_campaign_admin_integrity.sql": (
        "2b337fc624c46957aa044ea7747fd69fa1cd5ac032171fbe53047ca822a0162f"
    ),
    "0005_events_log_partitioned_by_day.sql": (
        "9ecc354e5c88d733edf956fc2df8c9a252f9dbc82d313d06eec0e1401d0ad8b8"
    ),
    "0006_pacing_frequency_caps_floors.sql": (
        "1960ec8f288efa01c619afb12feae698d04912839f9ffe815a67be8a3a034ea0"
    ),
    "0008_events_log_arrival_index.sql": (
        "4e4d3131f56be3fd7f6058bc02ce97ceba38b0e691ad3436463e86c97189c540"
    ),
    "0009_log_export.sql": "e6840843263edf2d0545428f69db3f51039d200d8c91f7ac6cb394cd5a355614",
    "0010_tiers_dayparting_key_values.sql": (
        "5b5aefc8fa48e5d82763a382d7eb6d4661b6ec44a8a00f24de4b99aef5538b36"
    ),
    "0011_advertiser_accounts.sql": (
        "43c2364941969ee91c615a58aaf638c502d7ce5718c3a2d4e2c2fe48df752eaa"
    ),
    "0012_hourly_metrics.sql": "15dd456424d7f82a6f371e8cf6ed21ca33ce98c0c00c45d7d77d83b553c06327",
    "0013_placement_duplicate_level.sql": (
        "a877fcf0da0bab149349c2b1ac66de506c82d2ef63cb4f117356e6fcb7441772"
    ),
    "0014_hourly_metrics_statistics.sql": (
        "e100080abc55a1c87ae75e3b16e71b60eb0cea0df3bb9c941525adfc7484d08b"
    ),
}


def test_released_migrations_are_unchanged() -> None:
    on_disk = {m.file_name: m.checksum for m in migrations.discover()}
    changed = {name for name, checksum in RELEASED.items() if on_disk.get(name) != checksum}
    assert not changed, f"released migrations changed or missing: {sorted(changed)}"


def test_every_migration_is_recorded_here_once_released() -> None:
    unrecorded = {m.file_name for m in migrations.discover()} - set(RELEASED)
    assert not unrecorded, f"record the checksum of {sorted(unrecorded)} in RELEASED"


def test_a_reworded_file_kept_its_statements_and_replaced_its_earlier_wording() -> None:
    on_disk = {m.version: m for m in migrations.discover()}
    for version, reworded in migrations.REWORDED.items():
        migration = on_disk[version]
        assert migration.statements_checksum == reworded.statements, (
            f"{migration.file_name}: a statement changed; put the change in a new migration"
        )
        assert reworded.earlier != migration.checksum, migration.file_name
        assert RELEASED[migration.file_name] == migration.checksum


def test_the_statements_checksum_ignores_comment_lines_only() -> None:
    sql = "-- the spec says\nCREATE TABLE t (id int); -- trailing\n\n"
    same = migrations.Migration(
        1, "0001_t.sql", "-- reworded\n\nCREATE TABLE t (id int); -- trailing\n"
    )
    assert (
        migrations.Migration(1, "0001_t.sql", sql).statements_checksum == same.statements_checksum
    )
    for changed in ("CREATE TABLE t (id bigint); -- trailing\n", "CREATE TABLE t (id int); -- x\n"):
        other = migrations.Migration(1, "0001_t.sql", changed)
        assert other.statements_checksum != same.statements_checksum
