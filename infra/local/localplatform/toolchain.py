"""The OpenFaaS binaries, built from pinned Go module versions into .local/bin, and ours
(provider, autoscaler), built from this repository.

The gateway, faas-cli and of-watchdog are tagged without a `v` (`0.27.14`), which Go cannot
use as a module version, and `go install MOD@VERSION` also asks the proxy for the module's
version list. So each is fetched the normal way, at an exact pseudo-version with
`go mod download`, checked against the h1: hash pinned below (or the checksum database), and
built from a writable copy of its source.

Where the module proxy refuses a module (it refuses of-watchdog and faas-cli 0.18.12 on our
machines), the build falls back to the upstream source archive of the same commit in the
directory that OPENFAAS_SOURCES_DIR names: its sha256 is checked against the pin below, it is
unpacked into a temporary directory and built with its vendored dependencies
(`go build -mod=vendor`). The archives are never copied into the repository. On a machine where
the proxy serves the module, OPENFAAS_SOURCES_DIR is not needed.

A binary is rebuilt only when its pin changes (a stamp file records it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .profile import REPO_ROOT, shared_dir

SOURCES_ENV = "OPENFAAS_SOURCES_DIR"


class ToolchainError(RuntimeError):
    """A pinned binary could not be fetched or built; the message says which and why."""


@dataclass(frozen=True)
class SourceArchive:
    """An unmodified `git archive` of the upstream commit behind a pin, with its dependencies
    vendored: the fallback where the module proxy refuses the module."""

    file: str
    sha256: str


@dataclass(frozen=True)
class GoBinary:
    name: str
    module: str
    version: str
    sum: str  # h1: hash of the module zip, as go.sum records it; empty: the checksum database
    tag: str  # the upstream tag the pseudo-version stands for
    build_flags: tuple[str, ...] = ("-mod=mod",)
    skip_sumdb: bool = False
    archive: SourceArchive | None = None
    ldflags: str = ""


GATEWAY = GoBinary(
    name="gateway",
    module="github.com/openfaas/faas/gateway",
    version="v0.0.0-20260702090804-8d803bf9e265",
    sum="h1:Co831gBP9f1x+8a31QuiqI+FH/zNB/gNjfKu2D29Zqo=",
    tag="0.27.14",
)


def _refused_by_the_proxy(
    name: str, module: str, tag: str, commit: str, time: str, sha256: str, ldflags: str
) -> GoBinary:
    """A module the proxy here refuses: its pseudo-version for `commit` (committed at `time`,
    yyyymmddhhmmss UTC), and the upstream archive of that commit as the fallback."""
    return GoBinary(
        name=name,
        module=module,
        version=f"v0.0.0-{time}-{commit[:12]}",
        sum="",  # the checksum database vouches for it where the proxy serves it
        tag=tag,
        archive=SourceArchive(file=f"{name}-{commit[:12]}.tar.gz", sha256=sha256),
        ldflags=ldflags.format(tag=tag, commit=commit),
    )


# The version stamps are those of the projects' own Makefiles.
FAAS_CLI = _refused_by_the_proxy(
    "faas-cli",
    "github.com/openfaas/faas-cli",
    tag="0.18.12",
    commit="c8191b71e7edf10be3b660ddcaee52c11de79238",
    time="20260724145813",
    sha256="144210b60f434fdbde2d67bc52e6471f582e46d6692e176e8838efb05c7f7386",
    ldflags="-s -w -X github.com/openfaas/faas-cli/version.Version={tag}"
    " -X github.com/openfaas/faas-cli/version.GitCommit={commit}",
)
OF_WATCHDOG = _refused_by_the_proxy(
    "of-watchdog",
    "github.com/openfaas/of-watchdog",
    tag="0.11.6",
    commit="9bdadb1e8c68ae1016ac1a35906cd2acaa53169a",
    time="20260513144341",
    sha256="9d7d0ba6b2b8e7e599e075550d6fee342933ffab672930828afd12c74d074167",
    ldflags="-s -w -X main.Version={tag} -X main.GitCommit={commit}",
)

PINNED = (GATEWAY, FAAS_CLI, OF_WATCHDOG)


def bin_path(name: str) -> Path:
    return shared_dir() / "bin" / name


def ensure(binary: GoBinary) -> Path:
    """Build `binary` at its pin unless the stamped build is already there: from the module
    proxy, or, where the proxy refuses it, from its source archive."""
    out = bin_path(binary.name)
    stamp = out.with_name(out.name + ".pin")
    pin = f"{binary.module}@{binary.version}"
    if out.exists() and stamp.exists() and stamp.read_text().strip() == pin:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        source = download(binary)
    except ToolchainError as refused:
        if binary.archive is None:
            raise
        _build_from_archive(binary, binary.archive, out, refused)
    else:
        with tempfile.TemporaryDirectory(prefix=f"build-{binary.name}-") as tmp:
            work = Path(tmp) / "src"
            shutil.copytree(source, work)
            for path in work.rglob("*"):
                path.chmod(path.stat().st_mode | 0o200)
            env = {"GONOSUMDB": binary.module} if binary.skip_sumdb else {}
            _go(["build", *binary.build_flags, *_ldflags(binary), "-o", str(out), "."], work, env)
    stamp.write_text(pin + "\n")
    return out


def _ldflags(binary: GoBinary) -> list[str]:
    return [f"-ldflags={binary.ldflags}"] if binary.ldflags else []


def _build_from_archive(
    binary: GoBinary, archive: SourceArchive, out: Path, refused: ToolchainError
) -> None:
    """Check the archive's sha256, unpack it into a temporary directory, build it vendored."""
    directory = os.environ.get(SOURCES_ENV, "")
    path = Path(directory) / archive.file if directory else None
    if path is None or not path.is_file():
        where = f"{SOURCES_ENV}={directory}" if directory else f"{SOURCES_ENV} is not set"
        raise ToolchainError(
            f"{binary.name} {binary.tag}: the module proxy refuses {binary.module}@"
            f"{binary.version} and no source archive {archive.file} was found ({where}); "
            f"set {SOURCES_ENV} to the directory holding it"
        ) from refused
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != archive.sha256:
        raise ToolchainError(
            f"{binary.name}: {path} has sha256 {digest}, not the pinned {archive.sha256}"
        )
    with tempfile.TemporaryDirectory(prefix=f"build-{binary.name}-") as tmp:
        with tarfile.open(path) as tar:
            tar.extractall(tmp, filter="data")  # no absolute paths, links or devices
        (top,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        _go(["build", "-mod=vendor", *_ldflags(binary), "-o", str(out), "."], top)


def watchdog() -> Path:
    """of-watchdog, which every replica runs in front of its function."""
    return ensure(OF_WATCHDOG)


def ensure_provider() -> Path:
    """Build infra/provider when its sources changed since the last build."""
    return ensure_go_command(REPO_ROOT / "infra" / "provider", "ads-provider")


def ensure_autoscaler() -> Path:
    """Build infra/autoscaler when its sources changed since the last build."""
    return ensure_go_command(REPO_ROOT / "infra" / "autoscaler", "ads-autoscaler")


def ensure_go_command(src: Path, name: str) -> Path:
    """Build the Go module in `src` into .local/bin/`name`, unless its sources are unchanged."""
    out = bin_path(name)
    stamp = out.with_name(out.name + ".pin")
    h = hashlib.sha256()
    for path in sorted(src.rglob("*")):
        if path.is_file() and path.suffix in (".go", ".mod", ".sum"):
            h.update(path.relative_to(src).as_posix().encode() + path.read_bytes())
    digest = h.hexdigest()
    if out.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    _go(["build", "-o", str(out), "."], cwd=src)
    stamp.write_text(digest + "\n")
    return out


def download(binary: GoBinary) -> Path:
    """The module's source directory in the module cache, after checking its pinned hash."""
    env = {"GONOSUMDB": binary.module} if binary.skip_sumdb else {}
    result = _go(
        ["mod", "download", "-json", f"{binary.module}@{binary.version}"],
        cwd=Path(tempfile.gettempdir()),
        extra_env=env,
        check=False,
    )
    try:
        info = json.loads(result.stdout)
    except json.JSONDecodeError:
        info = {"Error": result.stderr.strip() or "no output"}
    if "Error" in info or "Dir" not in info:
        raise ToolchainError(
            f"{binary.name} {binary.tag} ({binary.module}@{binary.version}) cannot be fetched: "
            f"{info.get('Error', 'unknown error')}"
        )
    if binary.sum and info.get("Sum") != binary.sum:
        raise ToolchainError(
            f"{binary.name}: module hash {info.get('Sum')} does not match the pinned {binary.sum}"
        )
    return Path(info["Dir"])


def _go(
    args: list[str], cwd: Path, extra_env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0", **(extra_env or {})}
    result = subprocess.run(["go", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ToolchainError(f"go {' '.join(args)} in {cwd} failed:\n{result.stderr[-3000:]}")
    return result
