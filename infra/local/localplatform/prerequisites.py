"""Programs the platform runs but does not build, and one line saying how to get a missing one.

`make up` and `make test` first run infra/local/prerequisites.sh, which installs the Debian
packages. This is the second line of defence, for a platform started some other way or on a
machine that changed since: before anything starts, every program the components and the build
need is looked up, and a missing one stops the platform with

    FAILED: redis-server is missing: apt-get install -y redis-server (as root; ...)

and exit status 1, never a traceback (`__main__` prints it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

# The Debian package that brings each program.
DEBIAN_PACKAGES = {
    "initdb": "postgresql-15",
    "postgres": "postgresql-15",
    "pg_isready": "postgresql-client-15",
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "java": "openjdk-17-jre-headless",
    "mvn": "maven",
    "ip": "iproute2",
    "nsenter": "util-linux",
    "setpriv": "util-linux",
    "npm": "npm",
}
# Programs no Debian package brings in the version we need.
ELSEWHERE = {
    "go": "Go 1.26 or later from https://go.dev/dl/, on PATH (Debian's golang is too old)",
}
SCRIPT = "infra/local/prerequisites.sh up installs every package the platform needs"


class MissingPrerequisite(RuntimeError):
    """Programs that are not installed; the message names them and how to install them."""

    def __init__(self, programs: Iterable[str]) -> None:
        self.programs = sorted({Path(p).name for p in programs})
        super().__init__(
            f"{', '.join(self.programs)} {'is' if len(self.programs) == 1 else 'are'} missing: "
            f"{how_to_install(self.programs)}"
        )


def how_to_install(programs: Iterable[str]) -> str:
    """`apt-get install -y redis-server maven (as root; ...)`, plus what apt cannot give."""
    names = list(programs)
    packages = sorted({DEBIAN_PACKAGES[n] for n in names if n in DEBIAN_PACKAGES})
    ways = [f"install {ELSEWHERE[n]}" for n in names if n in ELSEWHERE]
    if packages:
        ways.insert(0, f"apt-get install -y {' '.join(packages)} (as root; {SCRIPT})")
    unknown = [n for n in names if n not in DEBIAN_PACKAGES and n not in ELSEWHERE]
    if unknown:
        ways.append(f"install {', '.join(unknown)}")
    return "; ".join(ways)


def find(program: str) -> str | None:
    """The executable's path: a path as given, a bare name looked up on PATH."""
    if os.sep in program:
        return program if os.access(program, os.X_OK) and Path(program).is_file() else None
    return shutil.which(program)


def check(programs: Iterable[str]) -> None:
    """Raise MissingPrerequisite naming every program of `programs` that is not installed."""
    missing = [p for p in dict.fromkeys(programs) if find(p) is None]
    if missing:
        raise MissingPrerequisite(missing)


def require(program: str) -> str:
    """The program's path, or MissingPrerequisite."""
    path = find(program)
    if path is None:
        raise MissingPrerequisite([program])
    return path


def from_error(exc: FileNotFoundError) -> MissingPrerequisite | None:
    """A program a subprocess could not find, if that is what `exc` says (else None)."""
    name = Path(str(exc.filename or "")).name
    known = name in DEBIAN_PACKAGES or name in ELSEWHERE
    return MissingPrerequisite([name]) if known and find(str(exc.filename)) is None else None
