"""A build context's digest: what a developer's local npm build leaves behind never counts."""

from __future__ import annotations

from pathlib import Path

from localplatform.images import digest


def test_local_node_modules_and_dist_are_not_part_of_the_context(tmp_path: Path):
    (tmp_path / "function" / "src").mkdir(parents=True)
    (tmp_path / "index.py").write_text("print('hi')")
    (tmp_path / "function" / "package-lock.json").write_text("{}")
    (tmp_path / "function" / "src" / "main.js").write_text("export {}")
    before = digest(tmp_path)
    for leftover in ("node_modules/esbuild/index.js", "dist/assets/main-X1.js"):
        path = tmp_path / "function" / leftover
        path.parent.mkdir(parents=True)
        path.write_text("built")
    assert digest(tmp_path) == before
    (tmp_path / "function" / "src" / "main.js").write_text("export const changed = 1")
    assert digest(tmp_path) != before
