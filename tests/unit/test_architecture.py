"""The architecture as the repository states it: shared_layer by feature, and thin handlers.

The import-linter contracts in pyproject.toml are the reference (a kernel below the features;
inside a feature domain < store < service; pure domains and a pure kernel core; drivers only in
stores; no feature reaching into another's store; shared_layer on its own). These tests run the real
lint-imports on the tree, and on a copy with one forbidden import added, so that a contract that
stopped catching anything would fail here.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
HANDLERS = sorted(REPO.glob("functions/*/handler.py"))
PACKAGES = (
    "kernel", "bidding", "campaigns", "clicks", "pipeline", "reporting", "openrtb", "export",
    "console", "composition", "accounts",
)  # fmt: skip
DRIVERS = ("redis", "pg8000", "confluent_kafka", "urllib3", "flask", "waitress")
MAX_HANDLER_LINES = 100


def lint_imports(shared_layer_parent: Path = REPO) -> subprocess.CompletedProcess[str]:
    roots = [shared_layer_parent, REPO, REPO / "infra" / "local", REPO / "infra" / "connector"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in roots)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=shared_layer_parent,  # lint-imports puts its working directory first on sys.path
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_import_contract_is_kept():
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("kernel/money.py", "import redis", "are pure"),
        ("bidding/domain/auction.py", "import pg8000", "are pure"),
        ("kernel/http.py", "from shared_layer.bidding.domain import auction", "imports no feature"),
        (
            "bidding/domain/auction.py",
            "from shared_layer.bidding.store import budget_ledger",
            "domain < store",
        ),
        (
            "pipeline/store/relay.py",
            "from shared_layer.pipeline.service import live_counters_recovery",
            "domain < store",
        ),
        ("bidding/domain/auction.py", "from shared_layer.bidding import metrics", "domain < store"),
        ("clicks/service/tracker.py", "import pg8000", "only in the stores"),
        ("reporting/service/reports.py", "import confluent_kafka", "only in the stores"),
        ("kernel/settings.py", "import redis", "only in the stores"),
        (
            "clicks/service/tracker.py",
            "from shared_layer.bidding.store import budget_ledger",
            "the bidding store",
        ),
        (
            "export/service/log_export.py",
            "from shared_layer.campaigns.store import cache",
            "the campaigns store",
        ),
        (
            "bidding/service/bidder.py",
            "from shared_layer.clicks.store import click_ledger",
            "the clicks store",
        ),
        (
            "openrtb/service/exchange.py",
            "from shared_layer.pipeline.store import daily_metrics",
            "the pipeline store",
        ),
        (
            "bidding/service/bidder.py",
            "from shared_layer.openrtb.store import notices",
            "the openrtb store",
        ),
        (
            "pipeline/service/live_counters_recovery.py",
            "from shared_layer.export.store import object_bucket",
            "the export store",
        ),
        ("kernel/http.py", "import localplatform", "imports nothing from the platform"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, line, broken):
    copy = tmp_path / "shared_layer"
    shutil.copytree(REPO / "shared_layer", copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{line}  # added by the test\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    broken_lines = [text for text in result.stdout.splitlines() if " BROKEN" in text]
    assert any(broken in text for text in broken_lines), result.stdout


def _imports(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda p: p.parent.name)
def test_a_handler_is_thin_and_uses_drivers_only_through_shared_layer(handler):
    source = handler.read_text()
    assert len(source.splitlines()) <= MAX_HANDLER_LINES, "logic has leaked into the handler"
    for name in _imports(ast.parse(source)):
        top = name.split(".")[0]
        assert top not in DRIVERS, f"{handler.parent.name} imports the driver {name} itself"
        if top == "shared_layer":
            package = name.split(".")[1] if "." in name else None
            assert package in PACKAGES, f"{name}: a handler imports the modules of a package"


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda p: p.parent.name)
def test_a_handler_only_imports_and_defines_until_it_is_built(handler, monkeypatch):
    """With no setting at all, importing a handler connects nothing and starts no thread: the
    wiring waits for its `build(settings)`, which the template calls once, at start-up."""
    for name in list(os.environ):
        if name.isupper() and name not in ("PATH", "HOME"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OPENFAAS_SECRETS_DIR", "/nonexistent")
    threads = threading.active_count()
    spec = importlib.util.spec_from_file_location(f"{handler.parent.name}_imported", handler)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    assert callable(getattr(module, "build", None)), f"{handler.parent.name} has no build()"
    assert not hasattr(module, "CLOCK"), "the clock is a parameter of build(), not a global"
    assert threading.active_count() == threads, "a thread started at import"


def _sources() -> list[Path]:
    return sorted([*(REPO / "shared_layer").rglob("*.py"), *HANDLERS])


def test_metrics_are_declared_per_feature_through_the_kernel_helper():
    """prometheus_client stays in the kernel: every other metric is declared in its feature's
    metrics.py through kernel.metrics (`counter`, `gauge`, `histogram`, `enum`, `scraped`)."""
    for path in _sources():
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith("shared_layer/kernel/"):
            continue
        imported = _imports(ast.parse(path.read_text()))
        assert "prometheus_client" not in imported, f"{relative} declares metrics itself"
    features = ("bidding", "campaigns", "clicks", "pipeline", "reporting", "openrtb", "export")
    for feature in features:
        assert (REPO / "shared_layer" / feature / "metrics.py").is_file(), feature


def test_every_logger_comes_from_the_kernel_factory():
    """Only kernel.log builds a logger (its handler and format); the rest call get_logger."""
    for path in _sources():
        relative = path.relative_to(REPO).as_posix()
        if relative == "shared_layer/kernel/log.py":
            continue
        tree = ast.parse(path.read_text())
        assert "logging" not in _imports(tree), f"{relative} uses stdlib logging itself"
        built = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "Logger"
        ]
        assert not built, f"{relative} builds its own Logger"
