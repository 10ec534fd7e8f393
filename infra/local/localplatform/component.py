"""One local process of the platform: how it is prepared, started, checked and stopped.

A component writes its pid to `<state>/run/<name>.pid` and its output to
`<state>/logs/<name>.log`. `up` starts only components whose recorded pid is not alive, so a
second `make up` is harmless and a dead component is restarted alone; `down` stops exactly
the recorded pids (their whole process group) and keeps the data.
"""

from __future__ import annotations

import abc
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .prerequisites import MissingPrerequisite
from .profile import Profile


class ComponentError(RuntimeError):
    """A component could not be prepared or did not become healthy; the message says why."""


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: str | None = None
    inherit_env: bool = True


class Component(abc.ABC):
    """Subclasses give a name, a command and a health check; the rest is shared."""

    name: str = ""
    start_timeout_s: float = 60.0

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    # What a subclass provides.
    @abc.abstractmethod
    def command(self) -> Command: ...

    @abc.abstractmethod
    def healthy(self) -> bool:
        """True when the component answers its own health check (cheap, no side effects)."""

    @abc.abstractmethod
    def address(self) -> str:
        """Where users reach it, for `make status`."""

    def requires(self) -> tuple[str, ...]:
        """Programs it runs that the platform does not build (names or paths), checked before
        anything starts; a program missing anyway is reported when it is run (`start`)."""
        return ()

    def prepare(self) -> None:
        """Idempotent one-time setup before start: configs, data directories, builds."""

    def after_start(self) -> None:
        """Idempotent work once healthy: migrations, topics."""

    # Shared machinery.
    @property
    def pid_path(self) -> Path:
        return self.profile.run_dir / f"{self.name}.pid"

    @property
    def log_path(self) -> Path:
        return self.profile.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def start(self) -> None:
        cmd = self.command()
        env = dict(os.environ) if cmd.inherit_env else {"PATH": os.environ.get("PATH", "")}
        env.update(cmd.env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            try:
                proc = subprocess.Popen(
                    cmd.argv,
                    cwd=cmd.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    user=cmd.user,
                )
            except FileNotFoundError as exc:
                if cmd.cwd is not None and not cmd.cwd.is_dir():
                    raise
                raise MissingPrerequisite([cmd.argv[0]]) from exc
        self.pid_path.write_text(f"{proc.pid}\n")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                raise ComponentError(f"{self.name} exited during start; see {self.log_path}")
            if self.healthy():
                return
            time.sleep(0.2)
        raise ComponentError(
            f"{self.name} not healthy after {self.start_timeout_s:.0f}s; see {self.log_path}"
        )

    def stop(self, timeout_s: float = 20.0) -> bool:
        """Stop the recorded process group: SIGTERM, then SIGKILL. True if something ran."""
        pid = self.pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            time.sleep(0.2)
        self.pid_path.unlink(missing_ok=True)
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours is not alive; reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)
