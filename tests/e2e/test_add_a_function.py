"""The OpenFaaS developer loop, as the README's "Add a function" gives it, with the real faas-cli.

In a folder of its own, as a developer's project: `faas-cli new` from the repository's template,
an edit to handler.py, `faas-cli build` (Docker, the template's Dockerfile), `faas-cli deploy` to
the test platform's gateway, a request through the gateway, `faas-cli logs` holding the one line
the function printed for it, an edit rebuilt and redeployed with `faas-cli up --skip-push`, then
`faas-cli remove`, after which the gateway answers 404.

The provider runs the image Docker holds (no registry): it unpacks it once per image id. No
registry is reachable here, so the build gets the stand-in bases as build arguments, the only
difference from a developer's build (infra/docker/local_images.py).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from localplatform import faas_cli, gateway_api, toolchain
from localplatform.profile import REPO_ROOT
from tests.e2e.test_function_containers import local_images
from tests.support import wait_for

TEMPLATE = "python3-http-ads"
HANDLER = """def handle(event, context):
    request_id = event.headers.get("X-Request-Id", "")
    print(f"{GREETING} answered {request_id}", flush=True)
    return {"statusCode": 200, "body": {"greeting": GREETING, "requestId": request_id}}
"""


class Developer:
    """faas-cli run in the developer's folder, logged in to the test platform's gateway."""

    def __init__(self, platform, folder: Path) -> None:
        self.platform = platform
        self.folder = folder
        self.env = {**faas_cli.env(platform.profile), "DOCKER_BUILDKIT": "0"}
        self.built: list[str] = []

    def faas_cli(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        result = subprocess.run(
            [str(toolchain.bin_path("faas-cli")), *args],
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0 or not check, (
            f"faas-cli {' '.join(args)}:\n{result.stdout}{result.stderr}"
        )
        return result.stdout

    def build(self, *args: str) -> str:
        """faas-cli build (or up) with the stand-in bases; the id of the image it made."""
        self.faas_cli(*args, *_build_args(), timeout=600)
        image = f"{args[args.index('-f') + 1].removesuffix('.yml')}:latest"
        inspect = ["docker", "image", "inspect", "--format", "{{.Id}}", image]
        image_id = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout
        self.built.append(image_id.strip())
        return image_id.strip()

    def forget_images(self) -> None:
        """Remove what the test built: the Docker images and the provider's unpacked copies."""
        for image_id in self.built:
            subprocess.run(["docker", "image", "rm", "--force", image_id], capture_output=True)
            unpacked = self.platform.profile.images_dir / ".docker" / image_id.split(":")[-1]
            shutil.rmtree(unpacked, ignore_errors=True)

    def write_handler(self, name: str, greeting: str) -> None:
        source = f"GREETING = {greeting!r}\n\n\n" + HANDLER
        (self.folder / name / "handler.py").write_text(source)

    def invoke(self, name: str, request_id: str) -> requests.Response:
        return requests.get(
            f"{self.platform.gateway}/function/{name}",
            headers={"X-Request-Id": request_id},
            timeout=30,
        )


@pytest.fixture
def developer(platform, tmp_path: Path):
    """A fresh folder with the repository's templates where faas-cli looks (./template)."""
    shutil.copytree(REPO_ROOT / "templates" / TEMPLATE, tmp_path / "template" / TEMPLATE)
    return Developer(platform, tmp_path)


def _build_args() -> list[str]:
    """The stand-in bases this machine builds (no registry is reachable here)."""
    args = []
    for key, value in local_images.FUNCTION_BUILD_ARGS.items():
        args += ["--build-arg", f"{key}={value}"]
    return args


def test_new_build_deploy_invoke_logs_update_remove(developer, platform):
    name = f"hello-{uuid.uuid4().hex[:6]}"
    stack = f"{name}.yml"
    developer.faas_cli("new", name, "--lang", TEMPLATE, "--gateway", platform.gateway, "-f", stack)
    assert (developer.folder / stack).is_file(), list(developer.folder.iterdir())
    developer.write_handler(name, "hello")
    try:
        developer.build("build", "-f", stack)
        developer.faas_cli("deploy", "-f", stack)
        gateway_api.wait_available(platform.profile, name, timeout_s=60)

        request_id = f"devloop-{uuid.uuid4().hex}"
        r = developer.invoke(name, request_id)
        assert r.status_code == 200, r.text
        assert r.json() == {"greeting": "hello", "requestId": request_id}

        def lines_for_request() -> list[str]:
            logs = developer.faas_cli("logs", name, "--tail=false", "--since=10m")
            return [line for line in logs.splitlines() if request_id in line]

        ours = wait_for(lines_for_request, timeout_s=10)
        assert len(ours) == 1 and ours[0].endswith(f"hello answered {request_id}"), ours

        # The loop again: an edit, rebuilt and redeployed in one command, serves the new code.
        developer.write_handler(name, "hello again")
        developer.build("up", "--skip-push", "-f", stack)
        answered = wait_for(
            lambda: developer.invoke(name, request_id).json().get("greeting") == "hello again",
            timeout_s=60,
            interval_s=0.5,
        )
        assert answered, developer.invoke(name, request_id).text

        developer.faas_cli("remove", "-f", stack)
        gone = wait_for(lambda: developer.invoke(name, request_id).status_code == 404, timeout_s=20)
        assert gone, developer.invoke(name, request_id).text
    finally:
        developer.faas_cli("remove", name, check=False)
        developer.forget_images()
