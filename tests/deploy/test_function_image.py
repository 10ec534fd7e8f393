"""The function image for real clusters: templates/python3-http-ads/Dockerfile.

Without a container engine the Dockerfile is checked for what a build relies on: upstream bases
that build arguments can replace, the watchdog's settings, a non-root user, and every file it
copies present in each build context `faas-cli build --shrinkwrap` writes. Then each context is
installed the way the Dockerfile installs it (template requirements, shared_layer, the
function's requirements, into a fresh virtualenv) and the template's server is asked once for
/_/ready and once for a real request. tests/e2e/test_function_containers.py builds and runs the
real images under Docker.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from localplatform import images
from localplatform.profile import REPO_ROOT

from .conftest import STACKS

DOCKERFILES = (
    REPO_ROOT / "templates" / "python3-http-ads" / "Dockerfile",
    REPO_ROOT / "infra" / "sql" / "Dockerfile",
    REPO_ROOT / "infra" / "connector" / "Dockerfile",
    REPO_ROOT / "infra" / "compose" / "provider" / "Dockerfile",
)
TEMPLATE_DOCKERFILE = DOCKERFILES[0]
CALL_HANDLER = Path(__file__).parent / "call_handler.py"

# One request per function that its handler answers without any backing service, and the
# status a user would get: the handler really ran (routing, validation, the error body).
REQUESTS: dict[str, tuple[str, str, str, int]] = {
    "noop": ("GET", "/", "", 200),
    "serve": ("GET", "/", "", 400),  # no userId / placementId
    "bid": ("POST", "/", "{", 400),  # not JSON
    "openrtb": ("POST", "/", "{", 400),  # not a BidRequest
    "click": ("GET", "/", "", 400),  # no token
    "analytics": ("GET", "/campaign/c-1?startDate=2026-01-01&endDate=2026-01-02", "", 401),
    "campaigns": ("GET", "/", "", 401),  # no admin token
    "daily-metrics": ("POST", "/", "[1", 400),  # a batch that is not JSON
    "live-counters": ("POST", "/", "[1", 400),
    "console": ("GET", "/assets/missing.js", "", 404),  # the page is bundled; no such asset
    "export": ("GET", "/status", "", 401),  # no admin token
}


def dockerfile_args(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", path.read_text(), flags=re.M))


def base_images(path: Path) -> list[str]:
    """Every FROM image, with ARG defaults resolved; build stages named AS are not images."""
    args = dockerfile_args(path)
    stages: set[str] = set()
    found = []
    for ref, stage in re.findall(r"^FROM (\S+)(?: AS (\S+))?$", path.read_text(), flags=re.M):
        ref = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], ref)
        if ref not in stages:
            found.append(ref)
        if stage:
            stages.add(stage)
    return found


def copied_sources(path: Path) -> list[str]:
    """The sources of every COPY that reads the build context (not --from=<stage>)."""
    sources = []
    for line in re.findall(r"^COPY (.+)$", path.read_text(), flags=re.M):
        if line.startswith("--from="):
            continue
        sources += [s for s in line.split()[:-1] if not re.search(r"[*?\[]", s)]
    return sources


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_base_image_is_an_upstream_tag_a_build_argument_can_replace(
    dockerfile: Path,
) -> None:
    # What a user builds with: the upstream image by its tag (no digest this machine could not
    # have checked); `make test` passes the stand-ins of infra/docker as build arguments.
    refs = base_images(dockerfile)
    assert refs, f"{dockerfile}: no FROM"
    for ref in refs:
        if ref == "scratch":  # the empty image, not one that is pulled
            continue
        assert "@" not in ref and re.fullmatch(r"[\w./-]+:[\w.-]+", ref), ref
        assert not ref.endswith(":latest"), ref
    froms = re.findall(r"^FROM (\S+)", dockerfile.read_text(), flags=re.M)
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile.read_text(), flags=re.M))
    fixed = [f for f in froms if not f.startswith("${") and f not in stages | {"scratch"}]
    assert not fixed, f"{dockerfile}: bases no build argument can replace: {fixed}"


def test_template_image_runs_the_watchdog_in_http_mode_as_a_non_root_user() -> None:
    text = TEMPLATE_DOCKERFILE.read_text()
    refs = base_images(TEMPLATE_DOCKERFILE)
    assert refs == [
        "ghcr.io/openfaas/of-watchdog:0.11.6",
        "node:20-bookworm-slim",  # the console's bundle stage
        "python:3.11-slim-bookworm",  # the image itself
    ], refs
    assert "COPY --from=assets /src/dist/ function/dist/" in text
    assert "COPY --from=watchdog /fwatchdog /usr/bin/fwatchdog" in text
    env = dict(re.findall(r'(?:^ENV |^\s+)(\w+)="([^"]*)"', text, flags=re.M))
    assert env["mode"] == "http"
    assert env["upstream_url"] == "http://127.0.0.1:5000"  # index.py's FUNCTION_PORT default
    assert env["ready_path"] == "/_/ready"
    assert env["fprocess"] == "python index.py"
    for timeout in ("exec_timeout", "read_timeout", "write_timeout"):
        assert re.fullmatch(r"\d+s", env[timeout]), timeout
    users = re.findall(r"^USER (\S+)$", text, flags=re.M)
    assert users and users[-1] not in ("root", "0"), users
    assert "COPY requirements.txt function/shared_laye[r] /tmp/shared_layer/" in text
    assert re.search(r"pip install .*/tmp/shared_layer", text)
    assert re.search(r'^CMD \["fwatchdog"\]$', text, flags=re.M)


def test_shrinkwrap_writes_a_complete_context_for_every_function(shrinkwrapped: Path) -> None:
    sources = copied_sources(TEMPLATE_DOCKERFILE)
    assert "function/" in sources and "requirements.txt" in sources, sources
    functions = [fn.name for stack in STACKS for fn in images.read_stack(stack)]
    for name in functions:
        context = shrinkwrapped / name
        missing = [s for s in sources if not (context / s).exists()]
        assert not missing, f"build/{name} lacks what the Dockerfile copies: {missing}"
        assert (context / "Dockerfile").read_text() == TEMPLATE_DOCKERFILE.read_text()
        assert (context / "function" / "handler.py").is_file()
        assert (
            context / "function" / "shared_layer" / "pyproject.toml"
        ).is_file() or name == "noop"


@pytest.mark.parametrize("dockerfile", DOCKERFILES[1:], ids=lambda p: p.parent.name)
def test_other_images_copy_only_files_that_exist(dockerfile: Path) -> None:
    # infra/sql/Dockerfile builds from the repository root, the others from their folder.
    context = REPO_ROOT if dockerfile.parent.name == "sql" else dockerfile.parent
    missing = [s for s in copied_sources(dockerfile) if not (context / s).exists()]
    assert not missing, f"{dockerfile}: COPY sources missing from {context}: {missing}"


def _function_env(secrets_dir: Path) -> dict[str, str]:
    closed = "127.0.0.1:1"  # nothing listens: a handler that needed a service would fail
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(secrets_dir.parent),
        "OPENFAAS_SECRETS_DIR": str(secrets_dir),
        "DATABASE_URL": f"postgresql://adserver@{closed}/adserver",
        "REDIS_URL": f"redis://{closed}/0",
        "KAFKA_BROKERS": closed,
        "GATEWAY_URL": f"http://{closed}",
        "CLICK_BASE_URL": f"http://{closed}/function/click",
        "S3_ENDPOINT_URL": f"http://{closed}",
    }


def _build(fn: images.Function, root: Path, images_dir: Path) -> Path:
    """images.build_image installs a context the way the Dockerfile does. Offline from the uv
    cache first (`make test` runs this inside a namespace without a network), then online."""
    offline = {**os.environ, "UV_OFFLINE": "1"}
    for environ in (offline, dict(os.environ)):
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(environ)
        try:
            return images.build_image(fn, root=root, images_dir=images_dir)
        except images.ImageBuildError as exc:
            error = exc
        finally:
            os.environ.clear()
            os.environ.update(saved)
    pytest.fail(f"{fn.name}: the build context does not install: {error}", pytrace=False)


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_context_installs_imports_and_answers(
    name: str, shrinkwrapped: Path, tmp_path: Path
) -> None:
    fn = next(f for stack in STACKS for f in images.read_stack(stack) if f.name == name)
    image = _build(fn, shrinkwrapped.parent, tmp_path / "images")
    manifest = json.loads((image / images.MANIFEST).read_text())
    python = manifest["fprocess"].split()[0]
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for secret in fn.secrets:
        (secrets_dir / secret).write_text("s" * 48)
    method, path, body, expected = REQUESTS[name]
    result = subprocess.run(
        [python, str(CALL_HANDLER), manifest["workdir"], method, path, body],
        env=_function_env(secrets_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"{name}: importing or calling the handler failed:\n{result.stderr}"
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["handler_module"].startswith(manifest["workdir"]), answer
    assert answer["ready_status"] in (200, 503), answer  # 503: not ready without its stores
    assert answer["status"] == expected, answer
    if expected >= 400:
        error = json.loads(answer["body"])
        assert set(error) == {"error", "message", "requestId"}, error


def test_every_function_has_a_request() -> None:
    functions = {fn.name for stack in STACKS for fn in images.read_stack(stack)}
    assert functions == set(REQUESTS)
