"""The OpenFaaS binaries, built from pinned Go module versions into .local/bin, and ours
(provider, autoscaler), built from this repository.

The gateway, faas-cli and of-watchdog are tagged without a `v` (`0.27.14`), which Go cannot
use as a module version, and `go install MOD@VERSION` also asks the proxy for the module's
version list, which the proxy here refuses. So each is fetched at an exact pseudo-version
with `go mod download`, checked against the h1: hash pinned below, and built from a writable
copy of its source. A binary is rebuilt only when its pin changes (a stamp file records it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .profile import REPO_ROOT, shared_dir


class ToolchainError(RuntimeError):
    """A pinned binary could not be fetched or built; the message says which and why."""


@dataclass(frozen=True)
class GoBinary:
    name: str
    module: str
    version: str
    sum: str  # h1: hash of the module zip, as go.sum records it
    tag: str  # the upstream tag the pseudo-version stands for
    build_flags: tuple[str, ...] = ("-mod=mod",)
    skip_sumdb: bool = False


GATEWAY = GoBinary(
    name="gateway",
    module="github.com/openfaas/faas/gateway",
    version="v0.0.0-20260702090804-8d803bf9e265",
    sum="h1:Co831gBP9f1x+8a31QuiqI+FH/zNB/gNjfKu2D29Zqo=",
    tag="0.27.14",
)
# The pseudo-version of faas-cli 0.18.12 given in shared/OPENFAAS.md does not exist on the
# proxy; this is the newest faas-cli revision the proxy serves (January 2023). The checksum
# database does not know it, so its hash is pinned here instead.
FAAS_CLI = GoBinary(
    name="faas-cli",
    module="github.com/openfaas/faas-cli",
    version="v0.0.0-20230119133646-fea2bf5a6d0c",
    sum="h1:bKdpxt1nwx1gORMakzuqQ5M6iDeowMxBAXQGGmBMZks=",
    tag="0.15.x (2023-01-19)",
    skip_sumdb=True,
)
# of-watchdog 0.11.6: the pseudo-version in shared/OPENFAAS.md is refused by the proxy, and no
# other revision of the module is known to it. Until a resolvable pin exists, replicas run in
# the provider's direct mode (template server on 8080, no watchdog); see README.
OF_WATCHDOG = GoBinary(
    name="of-watchdog",
    module="github.com/openfaas/of-watchdog",
    version="v0.0.0-20260513144341-9bdadb1e8c68",
    sum="",
    tag="0.11.6",
)

PINNED = (GATEWAY, FAAS_CLI, OF_WATCHDOG)


def bin_path(name: str) -> Path:
    return shared_dir() / "bin" / name


def ensure(binary: GoBinary) -> Path:
    """Build `binary` at its pin unless the stamped build is already there."""
    out = bin_path(binary.name)
    stamp = out.with_name(out.name + ".pin")
    pin = f"{binary.module}@{binary.version}"
    if out.exists() and stamp.exists() and stamp.read_text().strip() == pin:
        return out
    source = download(binary)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"build-{binary.name}-") as tmp:
        work = Path(tmp) / "src"
        shutil.copytree(source, work)
        for path in work.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        env = {"GONOSUMDB": binary.module} if binary.skip_sumdb else {}
        _go(["build", *binary.build_flags, "-o", str(out), "."], cwd=work, extra_env=env)
    stamp.write_text(pin + "\n")
    return out


def watchdog_available() -> Path | None:
    """The of-watchdog binary if its pin resolves, else None (replicas then run direct)."""
    try:
        return ensure(OF_WATCHDOG)
    except ToolchainError:
        return None


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
