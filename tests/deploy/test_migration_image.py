"""The migration image (infra/sql/Dockerfile) without Docker: the files it copies, laid out as
in the image, are enough for our runner to find every migration, and its entry point reports
bad settings and an unreachable server the way a Job's log needs them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from localplatform.profile import REPO_ROOT

DOCKERFILE = REPO_ROOT / "infra" / "sql" / "Dockerfile"


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/app as the Dockerfile builds it: each COPY of the build context, to its destination."""
    app = tmp_path_factory.mktemp("app")
    for line in re.findall(r"^COPY (.+)$", DOCKERFILE.read_text(), flags=re.M):
        *sources, destination = line.split()
        for source in sources:
            src = REPO_ROOT / source
            dst = app / destination
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                target = dst / src.name if destination.endswith("/") else dst
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
    return app


def run_in_image(app: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=app,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(app / "infra" / "local"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_image_holds_every_migration_where_the_runner_looks(image_root: Path) -> None:
    code = (
        "from localplatform import migrations; print(*[m.file_name for m in migrations.discover()])"
    )
    result = run_in_image(image_root, ["-c", code], {})
    assert result.returncode == 0, result.stderr
    expected = sorted(p.name for p in (REPO_ROOT / "infra" / "sql" / "migrations").glob("*.sql"))
    assert result.stdout.split() == expected


def test_missing_settings_are_all_reported_at_once(image_root: Path) -> None:
    result = run_in_image(image_root, ["infra/sql/apply_migrations.py"], {"PGPORT": "x"})
    assert result.returncode != 0
    for problem in ("PGHOST", "PGDATABASE", "PGUSER", "PGPASSWORD_FILE", "PGPORT='x'"):
        assert problem in result.stderr, result.stderr


def test_an_unreachable_server_fails_with_its_address(image_root: Path, tmp_path: Path) -> None:
    password = tmp_path / "postgres-password"
    password.write_text("not-used")
    env = {
        "PGHOST": "127.0.0.1",
        "PGPORT": "1",  # nothing listens
        "PGDATABASE": "adserver",
        "PGUSER": "adserver",
        "PGPASSWORD_FILE": str(password),
        "MIGRATIONS_WAIT_S": "0",
    }
    result = run_in_image(image_root, ["infra/sql/apply_migrations.py"], env)
    assert result.returncode != 0
    assert "127.0.0.1:1 not reachable" in result.stderr, result.stderr
