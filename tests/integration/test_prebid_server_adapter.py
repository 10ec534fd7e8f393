"""The Prebid Server adapter (infra/prebid-server) in Prebid Server's own tree: the pinned
commit, unpacked once and kept (infra/prebid-server/pbs_tree.py), with the adapter copied
in and registered by the operator's install.py. Here: PBS's adapterstest harness runs every
exemplary and supplemental fixture, and PBS's own checks accept our params schema and
bidder-info file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ADAPTER_DIR = Path(__file__).resolve().parents[2] / "infra" / "prebid-server"
FIXTURES = ADAPTER_DIR / "adapters" / "openfaasads" / "openfaasadstest"
# The cases the issue names, each a fixture of its own.
REQUIRED_FIXTURES = {
    "exemplary/no-bid-204.json",
    "supplemental/no-bid-200-empty-seatbid.json",
    "exemplary/multi-imp-one-request.json",
    "exemplary/every-auction-macro-resolved.json",
    "exemplary/banner-app-mtype-from-imp.json",
    "supplemental/status-400-is-bad-input.json",
    "supplemental/status-503-is-upstream-error.json",
    "supplemental/video-imp-not-sent.json",
    "supplemental/video-imp-dropped-banner-imp-bid.json",
}


@pytest.fixture(scope="module")
def tree() -> Path:
    prepared = subprocess.run(
        [sys.executable, str(ADAPTER_DIR / "pbs_tree.py")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert prepared.returncode == 0, prepared.stderr
    return Path(prepared.stdout.strip())


def go(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["go", *args], cwd=tree, capture_output=True, text=True, timeout=900, check=False
    )


def test_prebid_servers_harness_passes_every_fixture(tree: Path):
    fixtures = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.json")}
    assert REQUIRED_FIXTURES <= fixtures
    assert len([f for f in fixtures if f.startswith("exemplary/")]) >= 5
    assert len([f for f in fixtures if f.startswith("supplemental/")]) >= 5
    run = go(tree, "test", "-count=1", "-v", "./adapters/openfaasads/...")
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    for test in ("TestJsonSamples", "TestParamsSchema"):
        assert f"--- PASS: {test}" in run.stdout


def test_prebid_servers_own_checks_accept_our_schema_and_bidder_info(tree: Path):
    checks = "TestBidderParamSchemas|TestBidderNamesValid|TestBidderUniquenessGatekeeping"
    run = go(tree, "test", "-count=1", "-v", f"-run=^({checks}|TestBidderInfoFiles)$",
             "./openrtb_ext", "./config")  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "--- PASS: TestBidderInfoFiles" in run.stdout
    assert "--- PASS: TestBidderParamSchemas" in run.stdout


def test_the_adapter_and_its_probe_are_gofmt_clean_and_vet_clean(tree: Path):
    probe = ADAPTER_DIR.parents[1] / "tests" / "e2e" / "prebid_adapter_probe"
    gofmt = subprocess.run(
        ["gofmt", "-l", str(ADAPTER_DIR / "adapters"), str(probe)], capture_output=True, text=True
    )
    assert gofmt.returncode == 0 and gofmt.stdout == "", gofmt.stdout + gofmt.stderr
    vet = go(tree, "vet", "./adapters/openfaasads/...")
    assert vet.returncode == 0, vet.stderr


def test_install_registers_the_bidder_once_however_often_it_runs(tree: Path):
    registered = {
        tree / "openrtb_ext" / "bidders.go": ("\tBidderOpenfaasads,", 'BidderName = "openfaasads"'),
        tree / "exchange" / "adapter_builders.go": (
            '"github.com/prebid/prebid-server/v4/adapters/openfaasads"',
            "openrtb_ext.BidderOpenfaasads:",
        ),
    }
    before = {path: path.read_text() for path in registered}
    again = subprocess.run(
        [sys.executable, str(ADAPTER_DIR / "install.py"), str(tree)], capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    for path, lines in registered.items():
        assert path.read_text() == before[path]
        for line in lines:
            assert before[path].count(line) == 1, (path, line)
