"""Local function images: what `docker build` would make, as an immutable directory.

`faas-cli build --shrinkwrap` writes each function's build context to `build/<fn>/` (template,
handler in `function/`, `configuration.copy` paths such as shared_layer). Each context then
becomes `images/by-digest/<digest>/`, named by the hash of its files, with its own virtualenv
holding the template's requirements, shared_layer and the function's requirements; the image
tag from stack.yml (`images/<sanitized tag>`) is a symlink to it. A digest directory is never
changed after it is complete, so a running replica is never touched by a rebuild; the provider
resolves the tag at deploy time, as a cluster resolves a tag to a digest.

`image.json` in the directory tells the provider how to run it (fprocess, workdir, env).

A function with a `package.json` (the console) has a web bundle: at build time, as the template's
Dockerfile does in its assets stage, `npm ci` installs exactly what package-lock.json pins (from
the shared npm cache under `.local/cache/npm`) and `npm run build` writes `function/dist/`; then
node_modules is removed. Nothing built is committed, and a local node_modules or dist is never
part of a build context's digest.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from .profile import REPO_ROOT, Profile, shared_dir

MANIFEST = "image.json"
# The stack files whose functions `make up` builds and deploys.
STACKS = (REPO_ROOT / "stack.yml", REPO_ROOT / "stack.baseline.yml")


class ImageBuildError(RuntimeError):
    """A build context could not be turned into an image; the message names the function."""


@dataclass(frozen=True)
class Function:
    name: str
    image: str
    lang: str
    secrets: tuple[str, ...] = ()


def read_stack(stack_file: Path) -> list[Function]:
    """The functions a stack file declares (an empty `functions:` is allowed here)."""
    doc = yaml.safe_load(stack_file.read_text()) or {}
    functions = doc.get("functions") or {}
    return [
        Function(
            name=name,
            image=_with_tag(spec["image"]),
            lang=spec["lang"],
            secrets=tuple(spec.get("secrets") or ()),
        )
        for name, spec in functions.items()
    ]


def sanitize(ref: str) -> str:
    """The directory name of an image reference: `ads/noop:0.1.0` -> `ads_noop_0.1.0`."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", _with_tag(ref))


def _with_tag(ref: str) -> str:
    # faas-cli appends :latest to an untagged image; the provider sees what faas-cli sends.
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else f"{ref}:latest"


def prepare_templates(root: Path = REPO_ROOT) -> None:
    """faas-cli reads templates only from ./template/<lang>: generate it from templates/."""
    generated = root / "template"
    for src in sorted((root / "templates").iterdir()):
        if src.is_dir():
            dst = generated / src.name
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst)


def shrinkwrap(faas_cli: Path, stack_file: Path, root: Path = REPO_ROOT) -> None:
    """Run `faas-cli build --shrinkwrap` for one stack file (writes build/<fn>/)."""
    if not read_stack(stack_file):
        return
    prepare_templates(root)
    result = subprocess.run(
        [str(faas_cli), "build", "--shrinkwrap", "-f", str(stack_file)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise ImageBuildError(
            f"faas-cli build --shrinkwrap -f {stack_file} failed:\n{result.stdout}{result.stderr}"
        )


# What a developer's own `npm ci && npm run build` leaves in a function's folder: built at image
# build time instead, so never part of a build context.
_NOT_IN_CONTEXT = ("function/node_modules/", "function/dist/")


def digest(context: Path) -> str:
    """Content hash of a build context: paths and bytes of every file, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        rel = path.relative_to(context).as_posix()
        if "__pycache__" in rel or rel.startswith(_NOT_IN_CONTEXT):
            continue
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_image(fn: Function, root: Path = REPO_ROOT, images_dir: Path | None = None) -> Path:
    """Turn build/<fn>/ into an image directory (reused when its digest exists) and tag it."""
    images_dir = images_dir or shared_dir() / "images"
    context = root / "build" / fn.name
    if not (context / "index.py").exists():
        raise ImageBuildError(f"{fn.name}: no build context at {context}; shrinkwrap first")
    final = images_dir / "by-digest" / digest(context)
    if not (final / MANIFEST).exists():
        _build_into(final, context, fn)
    tag = images_dir / sanitize(fn.image)
    tmp_link = tag.with_name(tag.name + ".new")
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(final.relative_to(images_dir))
    os.replace(tmp_link, tag)
    return final


def _build_into(final: Path, context: Path, fn: Function) -> None:
    # Built in place; image.json is written last, so a directory without it is an
    # interrupted build and is thrown away, and one with it is complete and never changed.
    shutil.rmtree(final, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        app = final / "app"
        shutil.copytree(context, app)
        for leftover in _NOT_IN_CONTEXT:
            shutil.rmtree(app / leftover, ignore_errors=True)
        if (app / "function" / "package.json").exists():
            _bundle_web_assets(app / "function", fn)
        venv = final / "venv"
        _uv("venv", "--quiet", "--python", sys.executable, str(venv))
        python = venv / "bin" / "python"
        steps = [["-r", str(app / "requirements.txt")]]
        if (app / "function" / "shared_layer").is_dir():
            steps.append([str(app / "function" / "shared_layer")])
        fn_reqs = app / "function" / "requirements.txt"
        if fn_reqs.exists() and fn_reqs.read_text().strip():
            steps.append(["-r", str(fn_reqs)])
        for args in steps:
            _uv("pip", "install", "--quiet", "--python", str(python), *args)
        manifest = {
            "ref": fn.image,
            "function": fn.name,
            "workdir": str(app),
            "fprocess": f"{python} index.py",
            "env": {
                "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                "mode": "http",
                "upstream_url": "http://127.0.0.1:5000",
                "ready_path": "/_/ready",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            },
        }
        (final / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise


def _bundle_web_assets(function_dir: Path, fn: Function) -> None:
    """`npm ci` (lockfile only, shared cache, no scripts) and `npm run build`, then drop
    node_modules: the image keeps only what the build wrote (function/dist/)."""
    npm = shutil.which("npm")
    if npm is None:
        raise ImageBuildError(
            f"{fn.name}: has a package.json but npm is not installed "
            "(Debian: apt-get install nodejs npm; bash .ci/run installs them)"
        )
    env = {
        **os.environ,
        "npm_config_cache": str(shared_dir() / "cache" / "npm"),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
    }
    for args in (["ci", "--prefer-offline", "--ignore-scripts"], ["run", "build"]):
        result = subprocess.run(
            [npm, *args], cwd=function_dir, capture_output=True, text=True, env=env
        )
        if result.returncode != 0:
            raise ImageBuildError(
                f"{fn.name}: npm {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
            )
    shutil.rmtree(function_dir / "node_modules")


def _uv(*args: str) -> None:
    uv = Path(sys.executable).parent / "uv"
    env = {**os.environ, "UV_CACHE_DIR": str(shared_dir() / "cache" / "uv")}
    result = subprocess.run([str(uv), *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise ImageBuildError(f"uv {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def resolved_digest(fn: Function, images_dir: Path) -> str:
    """The digest an image tag points at now ("" when the image was never built)."""
    tag = images_dir / sanitize(fn.image)
    return Path(os.readlink(tag)).name if tag.is_symlink() else ""


def build_stack(faas_cli: Path, stack_file: Path, profile: Profile) -> list[Path]:
    """Shrinkwrap and build every function of a stack file; returns the image directories.

    Serialised by a lock file: `build/` is one directory per checkout, and several test
    instances (ADS_TEST_INSTANCE) may build at once.
    """
    with build_lock():
        shrinkwrap(faas_cli, stack_file)
        return [build_image(fn, images_dir=profile.images_dir) for fn in read_stack(stack_file)]


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """Held while anything writes or removes build/ and template/ (one per checkout)."""
    lock_path = shared_dir() / "build.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
