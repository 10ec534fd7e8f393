"""Container images built on this machine, for machines that reach no container registry.

The Dockerfiles of the product name the upstream images (python:3.11-slim-bookworm,
ghcr.io/openfaas/of-watchdog:0.11.6, postgres, redis, ...). Where none can be pulled, this
builds stand-ins under `ads-local/` and passes them as build arguments or through the compose
override file, with no other difference:

- `ads-local/debian:bookworm`: `debootstrap --variant=minbase bookworm` imported with
  `docker import` (about 40 s, once; kept until removed);
- `ads-local/python:3.11-bookworm`, `ads-local/node:18-bookworm`: Debian's Python and Node.js on
  it (infra/docker/python, infra/docker/node);
- `ads-local/of-watchdog:0.11.6`: FROM scratch, the binary built from the pinned source;
- the function images (tags from stack.yml) from `faas-cli build --shrinkwrap` contexts, the
  connector and the migrations, with Docker's layer cache making a rebuild fast.

    python infra/docker/local_images.py bases       # the four base images
    python infra/docker/local_images.py functions   # bases, then every function of stack.yml
    python infra/docker/local_images.py compose     # bases, connector, migrations, stand-ins
    python infra/docker/local_images.py all         # all of the above
    python infra/docker/local_images.py build-args  # bases, then print faas-cli's --build-arg flags

(PYTHONPATH must hold infra/local, as for every localplatform command.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from localplatform import deploy_tools, images, toolchain
from localplatform.profile import REPO_ROOT, shared_dir

HERE = Path(__file__).resolve().parent
DEBIAN = "ads-local/debian:bookworm"
PYTHON = "ads-local/python:3.11-bookworm"
NODE = "ads-local/node:18-bookworm"
WATCHDOG = "ads-local/of-watchdog:0.11.6"
# What the template's Dockerfile is given instead of the upstream images it names.
FUNCTION_BUILD_ARGS = {"PYTHON_IMAGE": PYTHON, "WATCHDOG_IMAGE": WATCHDOG, "NODE_IMAGE": NODE}
STACKS = (REPO_ROOT / "stack.yml", REPO_ROOT / "stack.baseline.yml")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# The build machine's CA bundle (its HTTPS registry traffic is verified with it); only the
# stand-in bases carry it, see infra/docker/python/Dockerfile.
BUILD_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# of-watchdog's pinned source archive, where the module proxy refuses the module.


class ImageError(RuntimeError):
    """An image could not be built; the message says which and why."""


@dataclass(frozen=True)
class Built:
    tag: str
    seconds: float
    size_bytes: int


def docker(
    *args: str, stdin: IO[bytes] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], stdin=stdin, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ImageError(f"docker {' '.join(args[:3])} ... failed:\n{result.stderr[-3000:]}")
    return result


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def build(
    tag: str, context: Path, dockerfile: Path | None = None, args: dict[str, str] | None = None
) -> Built:
    """`docker build` with the layer cache; the classic builder, which needs no registry."""
    argv = ["build", "--quiet", "-t", tag]
    if dockerfile is not None:
        argv += ["-f", str(dockerfile)]
    for key, value in (args or {}).items():
        argv += ["--build-arg", f"{key}={value}"]
    started = time.monotonic()
    result = subprocess.run(
        ["docker", *argv, str(context)],
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ImageError(f"building {tag} from {context} failed:\n{result.stderr[-4000:]}")
    return Built(tag, time.monotonic() - started, image_size(tag))


def ensure_debian() -> None:
    """Debian 12 minbase from debootstrap, imported once (about 40 s)."""
    if image_exists(DEBIAN):
        return
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is not installed (Debian: apt-get install debootstrap)")
    work = shared_dir() / "docker"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=work) as rootfs:
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", rootfs, DEBIAN_MIRROR],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise ImageError(f"debootstrap failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        # Downloaded packages and package lists: every image on it runs apt-get update anyway.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(Path(rootfs) / leftover, ignore_errors=True)
        (Path(rootfs) / "var/lib/apt/lists/partial").mkdir(parents=True)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        docker("import", "-", DEBIAN, stdin=tar.stdout)
        if tar.wait() != 0:
            raise ImageError(f"tar of {rootfs} failed")


def watchdog_binary() -> Path:
    """of-watchdog as the local platform builds it: the Go module at its pin, else the pinned
    source archive in OPENFAAS_SOURCES_DIR (checked against its sha256)."""
    try:
        return toolchain.watchdog()
    except toolchain.ToolchainError as exc:
        raise ImageError(str(exc)) from exc


def _go_build(src: Path, out: Path, *flags: str) -> Path:
    """A static binary from the Go module in `src` (offline when its modules are cached)."""
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
    done = subprocess.run(
        ["go", "build", "-trimpath", *flags, "-o", str(out), "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ImageError(f"go build in {src} failed:\n{done.stderr[-3000:]}")
    return out


def _context_with(dockerfile_dir: Path, files: dict[str, Path], tmp: Path) -> Path:
    context = tmp / dockerfile_dir.name
    shutil.copytree(dockerfile_dir, context)
    for name, source in files.items():
        shutil.copy2(source, context / name)
    return context


def ensure_bases() -> list[Built]:
    """The four stand-in bases; each is a cached build once the Debian base exists."""
    ensure_debian()
    args = {"DEBIAN_IMAGE": DEBIAN}
    with tempfile.TemporaryDirectory(prefix="bases-") as tmp:
        ca = {"build-ca.crt": BUILD_CA}
        return [
            build(PYTHON, _context_with(HERE / "python", ca, Path(tmp)), args=args),
            build(NODE, _context_with(HERE / "node", ca, Path(tmp)), args=args),
            build(
                WATCHDOG,
                _context_with(HERE / "of-watchdog", {"fwatchdog": watchdog_binary()}, Path(tmp)),
            ),
        ]


def shrinkwrap(root: Path) -> Path:
    """`faas-cli build --shrinkwrap` of both stacks in a scratch copy of the repository."""
    for name in ("templates", "functions", "shared_layer"):
        ignore = shutil.ignore_patterns("__pycache__", "node_modules", "dist")
        shutil.copytree(REPO_ROOT / name, root / name, ignore=ignore)
    faas_cli = deploy_tools.faas_cli()
    for stack in STACKS:
        shutil.copy2(stack, root / stack.name)
        images.shrinkwrap(faas_cli, root / stack.name, root=root)
    return root / "build"


def stack_functions() -> list[images.Function]:
    return [fn for stack in STACKS for fn in images.read_stack(stack)]


def build_functions(names: Iterable[str] | None = None) -> list[Built]:
    """Every function's image (or those named), tagged as stack.yml says."""
    wanted = set(names) if names else None
    with tempfile.TemporaryDirectory(prefix="shrinkwrap-") as tmp:
        contexts = shrinkwrap(Path(tmp))
        return [
            build(fn.image, contexts / fn.name, args=FUNCTION_BUILD_ARGS)
            for fn in stack_functions()
            if wanted is None or fn.name in wanted
        ]


def build_connector() -> Built:
    return build(
        "ads/kafka-connector:0.1.0",
        REPO_ROOT / "infra" / "connector",
        args={"PYTHON_IMAGE": PYTHON},
    )


def build_migrations() -> Built:
    dockerfile = REPO_ROOT / "infra" / "sql" / "Dockerfile"
    return build("ads/migrations:0.1.0", REPO_ROOT, dockerfile, args={"PYTHON_IMAGE": PYTHON})


# Stand-ins for the images docker-compose.yml pulls (infra/compose/docker-compose.local-images.yml).
COMPOSE_STAND_INS = {
    "postgres": "ads-local/postgres:15-bookworm",
    "redis": "ads-local/redis:7-bookworm",
    "prometheus": "ads-local/prometheus:2.42-bookworm",
    "kafka": "ads-local/kafka:4.4.0",
    "gateway": "ads-local/gateway:0.27.14",
}
COMPOSE_PROVIDER = "ads/compose-provider:0.1.0"


def build_compose() -> list[Built]:
    """What docker-compose.yml runs besides the functions, with stand-ins for pulled images."""
    from localplatform.components import kafka

    built = [build_connector(), build_migrations()]
    args = {"DEBIAN_IMAGE": DEBIAN}
    with tempfile.TemporaryDirectory(prefix="compose-") as tmp:
        scratch = Path(tmp)
        files: dict[str, dict[str, Path]] = {
            "postgres": {},
            "redis": {},
            "prometheus": {},
            "kafka": {
                "libs": kafka.ensure_libs(),
                "log4j2.xml": REPO_ROOT / "infra" / "kafka" / "log4j2.xml",
            },
            "gateway": {"gateway": toolchain.ensure(toolchain.GATEWAY)},
        }
        for name, tag in COMPOSE_STAND_INS.items():
            context = scratch / name
            shutil.copytree(HERE / name, context)
            for target, source in files[name].items():
                if source.is_dir():
                    shutil.copytree(source, context / target)
                else:
                    shutil.copy2(source, context / target)
            built.append(build(tag, context, args=args))
        provider = scratch / "provider"
        provider.mkdir()
        _go_build(REPO_ROOT / "infra" / "compose" / "provider", provider / "compose-provider")
        (provider / "Dockerfile").write_text(
            "FROM scratch\nCOPY compose-provider /compose-provider\nUSER 10001\n"
            'EXPOSE 8081\nENTRYPOINT ["/compose-provider"]\n'
        )
        built.append(build(COMPOSE_PROVIDER, provider))
    return built


def _report(built: list[Built]) -> None:
    for b in built:
        print(f"{b.tag:40} {b.size_bytes / 1e6:8.1f} MB  {b.seconds:6.1f} s")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["bases", "functions", "compose", "all", "build-args"])
    parser.add_argument("names", nargs="*", help="only these functions")
    ns = parser.parse_args(argv)
    try:
        built = ensure_bases()
        if ns.what in ("functions", "all"):
            built += build_functions(ns.names or None)
        if ns.what in ("compose", "all"):
            built += build_compose()
    except (ImageError, toolchain.ToolchainError, images.ImageBuildError, RuntimeError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    if ns.what == "build-args":
        # For `faas-cli build/up $(make -s build-args)`: only the flags go to stdout.
        print(" ".join(f"--build-arg {k}={v}" for k, v in FUNCTION_BUILD_ARGS.items()))
        return 0
    _report(built)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
