"""Fixtures for tests that run against the test platform `make test` started.

The suite runs inside the test profile's network namespace, so 127.0.0.1:8080 is the test
gateway, never a developer's `make up`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from localplatform import faas_cli, secrets, toolchain
from localplatform.profile import PROFILES, REPO_ROOT, Profile


@dataclass(frozen=True)
class Platform:
    profile: Profile
    auth: tuple[str, str]

    @property
    def gateway(self) -> str:
        return self.profile.gateway_url

    def system(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method, f"{self.gateway}{path}", auth=self.auth, timeout=10, **kwargs
        )

    def faas_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(toolchain.bin_path("faas-cli")), *args]
        result = subprocess.run(
            argv,
            env=faas_cli.env(self.profile),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"faas-cli {' '.join(args)} failed: {result.stdout}{result.stderr}"
            )
        return result

    def localplatform(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "localplatform", "--profile", self.profile.name, command],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO_ROOT,
        )


@pytest.fixture(scope="session")
def platform() -> Platform:
    profile = PROFILES[os.environ.get("ADS_PROFILE", "test")]
    user, password_file = secrets.ensure_basic_auth(profile)
    p = Platform(profile=profile, auth=(user, Path(password_file).read_text().strip()))
    r = requests.get(f"{p.gateway}/healthz", timeout=5)
    assert r.ok, "the test platform is not running: run the suite with `make test`"
    return p


_STARTED = time.time()


def pytest_terminal_summary(terminalreporter) -> None:
    """Name the files tests left for a reviewer (screenshots) in `<test state>/artifacts/`."""
    artifacts = PROFILES[os.environ.get("ADS_PROFILE", "test")].state_dir / "artifacts"
    fresh = [p for p in sorted(artifacts.glob("*")) if p.stat().st_mtime >= _STARTED]
    if fresh:
        terminalreporter.write_sep("-", "artifacts for review")
        for path in fresh:
            terminalreporter.write_line(str(path))
