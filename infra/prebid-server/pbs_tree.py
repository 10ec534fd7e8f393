#!/usr/bin/env python3
"""A Prebid Server source tree at the pinned commit with the openfaasads adapter installed, for
its tests: prints the tree's path.

The tree comes from upstream (a git clone of github.com/prebid/prebid-server at the commit), or,
where OPENFAAS_SOURCES_DIR is set, from the unmodified archive of the same commit in that
directory, checked against its sha256 first (the module proxy refuses the module). It is unpacked
once into .local/prebid-server/<commit>/ and kept; each run copies the adapter in again
(install.py) and fetches the Go modules its tests need, so a later `go test` there needs no
network.

    python3 infra/prebid-server/pbs_tree.py       # prints .../prebid-server
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import install  # the operator's script beside this one

REPO_ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = "https://github.com/prebid/prebid-server.git"
COMMIT = "0ba352315253f6692af6497d553cfb12909a1b8b"  # 2026-08-18, after v4.8.0
ARCHIVE = f"prebid-server-{COMMIT[:12]}.tar.gz"
ARCHIVE_SHA256 = "26aa0fd6e2f2e6162e9c6471389e087662766f0910315ed7253d3324d3b722be"
SOURCES_ENV = "OPENFAAS_SOURCES_DIR"
# What the adapter's tests compile: the adapter, and Prebid Server's own checks of every
# bidder's params schema (openrtb_ext) and bidder-info file (config).
TESTED_PACKAGES = ("./adapters/openfaasads/...", "./openrtb_ext", "./config")


class TreeError(RuntimeError):
    """The pinned tree could not be fetched or prepared; the message says why."""


def tree() -> Path:
    """The pinned tree with the adapter installed and its tests' modules downloaded."""
    cache = Path(os.environ.get("ADS_LOCAL_DIR", REPO_ROOT / ".local")) / "prebid-server"
    top = cache / COMMIT[:12] / "prebid-server"
    if not (top / "go.mod").is_file():
        _fetch(top)
    install.install(top)
    go = subprocess.run(
        ["go", "list", "-deps", "-test", *TESTED_PACKAGES],
        cwd=top,
        env={**os.environ, "GOFLAGS": "-mod=mod"},
        capture_output=True,
        text=True,
    )
    if go.returncode != 0:
        raise TreeError(f"go list in {top} failed:\n{go.stderr[-3000:]}")
    return top


def _fetch(top: Path) -> None:
    """Unpack (or clone) into a temporary sibling, then rename: a half-made tree is never seen."""
    top.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=top.parent, prefix=".unpack-") as tmp:
        directory = os.environ.get(SOURCES_ENV, "")
        if directory:
            _unpack(Path(directory) / ARCHIVE, Path(tmp))
        else:
            _clone(Path(tmp) / "prebid-server")
        shutil.rmtree(top, ignore_errors=True)
        (Path(tmp) / "prebid-server").rename(top)


def _unpack(archive: Path, into: Path) -> None:
    if not archive.is_file():
        raise TreeError(f"{archive} not found ({SOURCES_ENV} names the folder holding {ARCHIVE})")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != ARCHIVE_SHA256:
        raise TreeError(f"{archive} has sha256 {digest}, not the pinned {ARCHIVE_SHA256}")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")  # no absolute paths, links out or devices


def _clone(into: Path) -> None:
    for command in (
        ["git", "clone", "--quiet", "--filter=blob:none", "--no-checkout", UPSTREAM, str(into)],
        ["git", "-C", str(into), "checkout", "--quiet", COMMIT],
    ):
        if subprocess.run(command).returncode != 0:
            raise TreeError(f"{' '.join(command)} failed")


if __name__ == "__main__":
    try:
        print(tree())
    except (TreeError, install.InstallError, OSError) as exc:
        sys.exit(f"pbs_tree.py: {exc}")
