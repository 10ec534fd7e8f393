"""Container images built on this machine, for machines that reach no container registry.

The Dockerfiles of the product name the upstream images (python:3.11-slim-bookworm,
ghcr.io/openfaas/of-watchdog:0.11.6, postgres, redis, ...). Where none can be pulled, this
builds stand-ins under `ads-local/` and passes them as build arguments or through the compose
override file, with no other difference:

- `ads-local/debian:bookworm`: `debootstrap --variant=minbase bookworm` imported with
  `docker import`, configured as Debian's slim images are (no documentation, manual pages or
  translations unpacked);
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
    python infra/docker/local_images.py all --jobs 1  # one build at a time (default: 3)

Images that do not depend on each other are built concurrently, each as soon as the images it
is built from exist; every line of output names the image and how long it took.

(PYTHONPATH must hold infra/local, as for every localplatform command.)
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
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
# npm for the Node stand-in (infra/docker/node/Dockerfile): the release Debian 12 ships, as the
# registry serves it with its dependencies inside, and the integrity the registry gives for it.
NPM_PACKAGE = "npm@9.2.0"
NPM_INTEGRITY = (
    "sha512-oypVdaWGHDuV79RXLvp+B9gh6gDyAmoHKrQ0/JBYTWWx5D8/"
    "+AAxFdZC84fSIiyDdyW4qfrSyYGKhekxDOaMXQ=="
)


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


# As Debian's slim container images (debian:bookworm-slim, which python:3.11-slim-bookworm is
# built on): dpkg leaves out documentation, manual pages and translations, and apt fetches no
# translated descriptions, so every stand-in is 10 to 35 MB smaller. (dpkg's force-unsafe-io,
# which those images also set, made no measurable difference to an install here.)
ROOTFS_CONFIG = {
    "etc/dpkg/dpkg.cfg.d/docker-slim": "\n".join(
        (
            "path-exclude /usr/share/doc/*",
            "path-include /usr/share/doc/*/copyright",
            "path-exclude /usr/share/man/*",
            "path-exclude /usr/share/info/*",
            "path-exclude /usr/share/groff/*",
            "path-exclude /usr/share/lintian/*",
            "path-exclude /usr/share/locale/*",
            "",
        )
    ),
    "etc/apt/apt.conf.d/docker-no-languages": 'Acquire::Languages "none";\n',
}


def ensure_debian() -> Built:
    """Debian 12 minbase from debootstrap, configured (ROOTFS_CONFIG) and imported once."""
    started = time.monotonic()
    if image_exists(DEBIAN):
        return Built(DEBIAN, time.monotonic() - started, image_size(DEBIAN))
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is not installed (Debian: apt-get install debootstrap)")
    work = shared_dir() / "docker"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=work) as rootfs:
        root = Path(rootfs)
        _run_or_fail(
            ["debootstrap", "--variant=minbase", "bookworm", rootfs, DEBIAN_MIRROR], "debootstrap"
        )
        for name, text in ROOTFS_CONFIG.items():
            (root / name).write_text(text)
        # Downloaded packages and package lists: every image on this base runs apt-get update.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            shutil.rmtree(root / leftover, ignore_errors=True)
        (root / "var/lib/apt/lists/partial").mkdir(parents=True)
        # Packages that register a manual page with update-alternatives (Java, PostgreSQL) need
        # the directory even though dpkg leaves the pages out from now on.
        (root / "usr/share/man/man1").mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        docker("import", "-", DEBIAN, stdin=tar.stdout)
        if tar.wait() != 0:
            raise ImageError(f"tar of {rootfs} failed")
    return Built(DEBIAN, time.monotonic() - started, image_size(DEBIAN))


def _run_or_fail(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise ImageError(f"{what} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def npm_tarball() -> Path:
    """NPM_PACKAGE's tarball by `npm pack` (kept under .local/cache), checked against its pin."""
    cache = shared_dir() / "cache"
    target = cache / f"{NPM_PACKAGE.replace('@', '-')}.tgz"
    if not target.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise ImageError("npm is not installed (Debian: apt-get install nodejs npm)")
        scratch = Path(tempfile.mkdtemp(prefix="npm-pack-", dir=cache.parent))
        try:
            _run_or_fail(
                [npm, "pack", NPM_PACKAGE, "--pack-destination", str(scratch)],
                f"npm pack {NPM_PACKAGE}",
                env={**os.environ, "npm_config_cache": str(cache / "npm")},
            )
            (packed,) = scratch.glob("*.tgz")
            cache.mkdir(parents=True, exist_ok=True)
            packed.replace(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    algorithm, _, expected = NPM_INTEGRITY.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, target.read_bytes()).digest()).decode()
    if actual != expected:
        target.unlink()
        raise ImageError(f"{target.name}: {algorithm} {actual} is not the pinned {expected}")
    return target


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
    """A copy of `dockerfile_dir` with `files` (or directories) beside its Dockerfile."""
    context = tmp / dockerfile_dir.name
    shutil.copytree(dockerfile_dir, context)
    for name, source in files.items():
        if source.is_dir():
            shutil.copytree(source, context / name)
        else:
            shutil.copy2(source, context / name)
    return context


# ---- the build plan: every image, what it is built from, and how ----


@dataclass(frozen=True)
class Step:
    """One image to build (or, with no image, a build context to prepare), once every step
    named in `needs` is done."""

    name: str
    run: Callable[[], Built | None]
    needs: tuple[str, ...] = ()


SHRINKWRAP = "shrinkwrap contexts"
# Concurrent builds: builds spend much of their time waiting on apt, pip and dpkg's disk writes,
# so three overlap well on two cores; more only queue for the CPU.
DEFAULT_JOBS = 3


def _stand_in(
    tmp: Path,
    tag: str,
    folder: str,
    files: Callable[[], dict[str, Path]] = dict,
    needs: tuple[str, ...] = (DEBIAN,),
) -> Step:
    """infra/docker/<folder> built as `tag`, with `files` (fetched or built when the step runs)
    beside its Dockerfile."""
    args = {"DEBIAN_IMAGE": DEBIAN}
    return Step(
        tag, lambda: build(tag, _context_with(HERE / folder, files(), tmp), args=args), needs
    )


def _base_steps(tmp: Path) -> list[Step]:
    ca = {"build-ca.crt": BUILD_CA}
    return [
        Step(DEBIAN, ensure_debian),
        _stand_in(tmp, PYTHON, "python", lambda: ca),
        _stand_in(tmp, NODE, "node", lambda: {**ca, "npm.tgz": npm_tarball()}),
        # FROM scratch, as upstream: it needs no Debian base.
        _stand_in(tmp, WATCHDOG, "of-watchdog", lambda: {"fwatchdog": watchdog_binary()}, ()),
    ]


def _function_steps(tmp: Path, names: Iterable[str] | None) -> list[Step]:
    """The functions after the bases; the first alone, so that it fills the layers every other
    function shares (the template's runtime, shared_layer) and they find them cached."""
    wanted = set(names) if names else None
    contexts = tmp / "shrinkwrap" / "build"
    functions = [fn for fn in stack_functions() if wanted is None or fn.name in wanted]
    # After the first, those with requirements of their own (export's S3 client) take longest:
    # they start first, so that none of them is left running alone at the end.
    functions[1:] = sorted(functions[1:], key=lambda fn: -_own_requirements(fn.name))
    steps = [Step(SHRINKWRAP, lambda: _shrinkwrap_step(tmp / "shrinkwrap"))]
    for index, fn in enumerate(functions):
        needs = (PYTHON, NODE, WATCHDOG, SHRINKWRAP) if index == 0 else (functions[0].image,)
        steps.append(Step(fn.image, _function_build(fn, contexts), needs))
    return steps


def _own_requirements(function: str) -> int:
    """How many packages functions/<function>/requirements.txt pins."""
    path = REPO_ROOT / "functions" / function / "requirements.txt"
    if not path.exists():
        return 0
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return sum(1 for line in lines if line)


def _function_build(fn: images.Function, contexts: Path) -> Callable[[], Built]:
    return lambda: build(fn.image, contexts / fn.name, args=FUNCTION_BUILD_ARGS)


def _shrinkwrap_step(root: Path) -> None:
    root.mkdir()
    shrinkwrap(root)


def _compose_steps(tmp: Path) -> list[Step]:
    """What docker-compose.yml runs besides the functions, with stand-ins for pulled images."""
    from localplatform.components import kafka

    files: dict[str, Callable[[], dict[str, Path]]] = {
        "kafka": lambda: {
            "libs": kafka.ensure_libs(),
            "log4j2.xml": REPO_ROOT / "infra" / "kafka" / "log4j2.xml",
        },
        "gateway": lambda: {"gateway": toolchain.ensure(toolchain.GATEWAY)},
    }
    return [
        Step("ads/kafka-connector:0.1.0", build_connector, needs=(PYTHON,)),
        Step("ads/migrations:0.1.0", build_migrations, needs=(PYTHON,)),
        *(
            # The gateway's image is FROM scratch, as upstream: it needs no Debian base.
            _stand_in(tmp, tag, name, files.get(name, dict), () if name == "gateway" else (DEBIAN,))
            for name, tag in COMPOSE_STAND_INS.items()
        ),
        Step(COMPOSE_PROVIDER, lambda: _build_compose_provider(tmp / "provider")),
    ]


def _build_compose_provider(context: Path) -> Built:
    context.mkdir()
    _go_build(REPO_ROOT / "infra" / "compose" / "provider", context / "compose-provider")
    (context / "Dockerfile").write_text(
        "FROM scratch\nCOPY compose-provider /compose-provider\nUSER 10001\n"
        'EXPOSE 8081\nENTRYPOINT ["/compose-provider"]\n'
    )
    return build(COMPOSE_PROVIDER, context)


def run_steps(
    steps: list[Step], jobs: int = DEFAULT_JOBS, log: IO[str] | None = None
) -> list[Built]:
    """Each step as soon as the steps it needs are done, at most `jobs` at a time.

    A line when a build starts and one when it ends (size, seconds) go to `log`. The first
    failure stops new builds, waits for those running and raises.
    """
    by_name = {step.name: step for step in steps}
    for step in steps:
        missing = [need for need in step.needs if need not in by_name]
        if missing:
            raise ImageError(f"{step.name} needs {missing}, which this plan does not build")
    done: set[str] = set()
    built: list[Built] = []
    waiting = list(steps)
    started_at: dict[str, float] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running: dict[concurrent.futures.Future[Built | None], Step] = {}
        while waiting or running:
            ready = [s for s in waiting if all(need in done for need in s.needs)]
            if not ready and not running:
                raise ImageError(f"no step can start: {[s.name for s in waiting]} wait in a cycle")
            for step in ready[: max(1, jobs) - len(running)]:
                waiting.remove(step)
                _say(log, f"==> {step.name}")
                started_at[step.name] = time.monotonic()
                running[pool.submit(step.run)] = step
            finished, _ = concurrent.futures.wait(
                running, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in finished:
                step = running.pop(future)
                try:
                    result = future.result()
                except Exception:
                    concurrent.futures.wait(running)
                    raise
                done.add(step.name)
                if result is None:
                    seconds = time.monotonic() - started_at[step.name]
                    _say(log, f"    {step.name:38} {'':11}  {seconds:6.1f} s")
                else:
                    built.append(result)
                    _say(log, f"    {_line(result)}")
    return built


def _say(log: IO[str] | None, line: str) -> None:
    if log is not None:
        print(line, file=log, flush=True)


def _line(b: Built) -> str:
    return f"{b.tag:38} {b.size_bytes / 1e6:8.1f} MB  {b.seconds:6.1f} s"


def build_images(
    functions: bool = False,
    compose: bool = False,
    names: Iterable[str] | None = None,
    jobs: int = DEFAULT_JOBS,
    log: IO[str] | None = None,
) -> list[Built]:
    """The stand-in bases, and the function images and/or compose's images, concurrently."""
    with tempfile.TemporaryDirectory(prefix="images-") as scratch:
        tmp = Path(scratch)
        # In this order a free slot takes the next step that can start: the compose stand-ins
        # (Kafka's Java takes longest) before the functions, which queue behind their bases.
        steps = _base_steps(tmp)
        if compose:
            steps += _compose_steps(tmp)
        if functions:
            steps += _function_steps(tmp, names)
        return run_steps(steps, jobs, log)


def ensure_bases() -> list[Built]:
    """The stand-in bases; each is a cached build once it exists."""
    return build_images()


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
    """Every function's image (or those named), tagged as stack.yml says, after the bases."""
    return build_images(functions=True, names=names)


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
    "kafka": "ads-local/kafka:4.4.0",
    "postgres": "ads-local/postgres:15-bookworm",
    "redis": "ads-local/redis:7-bookworm",
    "prometheus": "ads-local/prometheus:2.42-bookworm",
    "gateway": "ads-local/gateway:0.27.14",
}
COMPOSE_PROVIDER = "ads/compose-provider:0.1.0"


def build_compose() -> list[Built]:
    """The bases, then what docker-compose.yml runs besides the functions."""
    return build_images(compose=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["bases", "functions", "compose", "all", "build-args"])
    parser.add_argument("names", nargs="*", help="only these functions")
    parser.add_argument(
        "--jobs", type=int, default=DEFAULT_JOBS, help="builds at a time (default: %(default)s)"
    )
    ns = parser.parse_args(argv)
    # build-args prints only the flags on stdout (`faas-cli build $(make -s build-args)`).
    log = sys.stderr if ns.what == "build-args" else sys.stdout
    started = time.monotonic()
    try:
        built = build_images(
            functions=ns.what in ("functions", "all"),
            compose=ns.what in ("compose", "all"),
            names=ns.names or None,
            jobs=ns.jobs,
            log=log,
        )
    except (ImageError, toolchain.ToolchainError, images.ImageBuildError, RuntimeError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    if ns.what == "build-args":
        print(" ".join(f"--build-arg {k}={v}" for k, v in FUNCTION_BUILD_ARGS.items()))
        return 0
    print(f"{len(built)} images in {time.monotonic() - started:.1f} s ({ns.jobs} at a time)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
