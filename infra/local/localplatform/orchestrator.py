"""`make up`, `make down`, `make status`, `make clean`: the platform as one unit.

Two phases. `build` needs the network and takes time: pinned binaries, our provider, the Kafka
jars, the function images. `start` needs neither: it starts whatever is down, in dependency
order, waits for each health check, then deploys the stacks through the real gateway with
faas-cli. `up` is both. The test profile builds outside its namespace and starts inside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import requests

from . import demo_data, images, network, secrets, toolchain
from .component import Component, ComponentError
from .components.autoscaler import Autoscaler
from .components.connector import Connector
from .components.gateway import Gateway
from .components.kafka import Kafka
from .components.postgres import Postgres
from .components.prometheus import Prometheus
from .components.provider import Provider
from .components.redis import Redis
from .components.redis_cluster import cluster_nodes
from .components.s3 import S3
from .profile import REPO_ROOT, Profile

STACKS = (REPO_ROOT / "stack.yml", REPO_ROOT / "stack.baseline.yml")
FUNCTION_READY_TIMEOUT_S = 90.0


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def components(profile: Profile) -> list[Component]:
    """In start order; stopped in reverse."""
    return [
        Postgres(profile),
        Redis(profile),
        *cluster_nodes(profile),
        Kafka(profile),
        Prometheus(profile),
        S3(profile),
        Provider(profile),
        Gateway(profile),
        Autoscaler(profile),
        Connector(profile),
    ]


def build(profile: Profile) -> None:
    """Everything that needs the network or a compiler, reused when already built."""
    profile.ensure_dirs()
    for binary in (toolchain.GATEWAY, toolchain.FAAS_CLI):
        say(f"{binary.name} {binary.tag}: {toolchain.ensure(binary)}")
    watchdog = toolchain.watchdog_available()
    if watchdog:
        say(f"of-watchdog {toolchain.OF_WATCHDOG.tag}: {watchdog}")
    else:
        say(
            f"of-watchdog {toolchain.OF_WATCHDOG.tag}: cannot be fetched here; "
            "replicas run in direct mode, the provider does the watchdog's work (see README)"
        )
    say(f"provider: {toolchain.ensure_provider()}")
    say(f"autoscaler: {toolchain.ensure_autoscaler()}")
    Kafka(profile).fetch()
    say("kafka: jars ready")
    faas_cli = toolchain.bin_path(toolchain.FAAS_CLI.name)
    for stack in STACKS:
        for image in images.build_stack(faas_cli, stack, profile):
            say(f"image {image.name} ({stack.name})")


def start(profile: Profile) -> None:
    """Start what is down, deploy the stacks, wait for every function to be available."""
    profile.ensure_dirs()
    secrets.ensure_basic_auth(profile)
    network.ensure_bridge(profile)
    for component in components(profile):
        if component.running() and component.healthy():
            say(f"{component.name}: already up ({component.address()})")
            continue
        if component.running():
            say(f"{component.name}: running but not healthy yet, waiting")
        else:
            say(f"{component.name}: starting")
            component.prepare()
            component.start()
        try:
            component.wait_healthy()
        except ComponentError as exc:
            raise SystemExit(f"FAILED: {exc}") from None
        component.after_start()
        say(f"{component.name}: up ({component.address()}), log {component.log_path}")
    deploy(profile)
    seed_demo_data(profile)
    user, password_file = secrets.ensure_basic_auth(profile)
    print(
        "\nThe platform is up.\n"
        f"  gateway     {profile.gateway_url}\n"
        f"  log in      faas-cli login --gateway {profile.gateway_url} -u {user} "
        f"--password-stdin < {password_file}\n"
        f"  try         curl -s {profile.gateway_url}/function/noop\n"
        f"  console     {profile.gateway_url}/function/console/  (sign in with the token in "
        f"{profile.secrets_dir / 'campaigns-admin-token'})\n"
        f"  prometheus  http://127.0.0.1:{profile.ports.prometheus}\n"
        "  status      make status\n",
        flush=True,
    )


def seed_demo_data(profile: Profile) -> None:
    """Demo campaigns when the campaigns table is empty, if the profile wants them."""
    if not profile.demo_data:
        return
    created = demo_data.seed(profile, only_if_empty=True)
    if created:
        say(f"demo data: {created} campaigns created through the campaigns API")


DIGEST_ANNOTATION = "com.adserver.image-digest"


def deploy(profile: Profile) -> None:
    """faas-cli deploy each function whose image changed, then wait for available replicas.

    Every deployment carries its image digest as an annotation; a function already deployed
    with the same digest is left alone, so a second `make up` restarts no replica.
    """
    faas_cli = str(toolchain.bin_path(toolchain.FAAS_CLI.name))
    env = faas_cli_env(profile)
    user, password_file = secrets.ensure_basic_auth(profile)
    _run(
        [faas_cli, "login", "--gateway", profile.gateway_url, "-u", user, "--password-stdin"],
        env=env,
        stdin=password_file.read_text(),
    )
    images.prepare_templates()
    ensure_function_secrets(profile, faas_cli, env)
    names = []
    for stack in STACKS:
        for fn in images.read_stack(stack):
            names.append(fn.name)
            digest = images.resolved_digest(fn, profile.images_dir)
            deployed = function_status(profile, fn.name) or {}
            if (deployed.get("annotations") or {}).get(DIGEST_ANNOTATION) == digest:
                say(f"function {fn.name}: unchanged ({fn.image} @ {digest})")
                continue
            say(f"function {fn.name}: deploying {fn.image} @ {digest}")
            _run(
                [
                    faas_cli,
                    "deploy",
                    "-f",
                    str(stack),
                    "--filter",
                    fn.name,
                    "--gateway",
                    profile.gateway_url,
                    "--annotation",
                    f"{DIGEST_ANNOTATION}={digest}",
                ],
                env=env,
            )
    for name in names:
        wait_available(profile, name)
        say(f"function {name}: available")


def ensure_function_secrets(profile: Profile, faas_cli: str, env: dict[str, str]) -> None:
    """Every secret a stack names exists as an OpenFaaS secret (generated once, kept in a file).

    A secret file already in the state dir (postgres-password, written by the PostgreSQL
    component) is used as it is; any other is generated. Values never reach a command line.
    """
    wanted = sorted(
        {name for stack in STACKS for fn in images.read_stack(stack) for name in fn.secrets}
    )
    existing = {s["name"] for s in (_system(profile, "GET", "/system/secrets") or [])}
    for name in wanted:
        path = secrets.ensure_secret(profile, name)
        if name not in existing:
            _run(
                [
                    faas_cli,
                    "secret",
                    "create",
                    name,
                    "--from-file",
                    str(path),
                    "--gateway",
                    profile.gateway_url,
                ],
                env=env,
            )
            say(f"secret {name}: created")


def _system(profile: Profile, method: str, path: str) -> object:
    user, password_file = secrets.ensure_basic_auth(profile)
    r = requests.request(
        method,
        f"{profile.gateway_url}{path}",
        auth=(user, password_file.read_text().strip()),
        timeout=5,
    )
    r.raise_for_status()
    return r.json()


def service_env(profile: Profile) -> dict[str, str]:
    """Where functions find the backing services: the profile's addresses on the bridge,
    unless DATABASE_URL, REDIS_URL, KAFKA_BROKERS, GATEWAY_URL or CLICK_BASE_URL are set in
    the environment (to run the same functions against docker-compose services or a
    cluster's). The test platform always uses its own services: its test process has the
    host-side addresses in those variables, which replicas could not reach."""
    own = profile.service_env()
    if profile.host_netns is not None:
        return own
    return {key: os.environ.get(key, value) for key, value in own.items()}


def faas_cli_env(profile: Profile) -> dict[str, str]:
    """faas-cli's own config in the state dir; stack ${VARS} resolve to service_env()."""
    return {
        **os.environ,
        **service_env(profile),
        "OPENFAAS_CONFIG": str(profile.state_dir / "faas-cli"),
        "OPENFAAS_URL": profile.gateway_url,
    }


def wait_available(
    profile: Profile, name: str, minimum: int = 1, timeout_s: float = FUNCTION_READY_TIMEOUT_S
) -> dict:
    deadline = time.monotonic() + timeout_s
    status: dict = {}
    while time.monotonic() < deadline:
        status = function_status(profile, name) or {}
        if status.get("availableReplicas", 0) >= minimum:
            return status
        time.sleep(0.25)
    raise SystemExit(
        f"FAILED: function {name} has {status.get('availableReplicas', 0)} available replicas "
        f"after {timeout_s:.0f}s; see {profile.state_dir / 'provider' / 'logs'}"
    )


def function_status(profile: Profile, name: str) -> dict | None:
    user, password_file = secrets.ensure_basic_auth(profile)
    try:
        r = requests.get(
            f"{profile.gateway_url}/system/function/{name}",
            auth=(user, password_file.read_text().strip()),
            timeout=2,
        )
    except requests.RequestException:
        return None
    return r.json() if r.ok else None


DRAIN_BOUND_S = 35.0  # of-watchdog's default write_timeout (30 s), and a little more


def stop(profile: Profile) -> None:
    """Stop exactly what was started (recorded pids), keep the data, leave no namespace."""
    for component in reversed(components(profile)):
        if isinstance(component, Gateway) and component.running():
            # The gateway has no graceful shutdown: let what it forwarded finish first.
            wait_for_invocations(profile, DRAIN_BOUND_S)
        if component.stop():
            say(f"{component.name}: stopped")
    for leftover in network.sweep(profile):
        say(f"removed leftover {leftover}")
    network.remove_bridge(profile)


def wait_for_invocations(profile: Profile, timeout_s: float) -> None:
    """Wait (bounded) until no replica serves a request, as the provider reports it."""
    if not network.inside_host_netns(profile):
        return  # 127.0.0.1 here is not this profile's provider
    url = f"http://127.0.0.1:{profile.ports.provider_ops}/replicas"
    deadline = time.monotonic() + timeout_s
    told = False
    while time.monotonic() < deadline:
        try:
            busy = sum(r["inflight"] for r in requests.get(url, timeout=2).json())
        except (requests.RequestException, ValueError, KeyError):
            return  # no provider (or not in this namespace): nothing to wait for
        if busy == 0:
            return
        if not told:
            say(f"gateway: waiting for {busy} request(s) in flight to finish")
            told = True
        time.sleep(0.1)
    say(f"gateway: requests still in flight after {timeout_s:.0f}s; stopping anyway")


def reset(profile: Profile) -> None:
    """Stop the profile and remove its state (data, logs, secrets); built images stay."""
    stop(profile)
    Postgres(profile).purge()
    shutil.rmtree(profile.state_dir, ignore_errors=True)
    say(f"removed {profile.state_dir}")


def clean(profile: Profile) -> None:
    """`make clean`: `reset`, and the generated build contexts and templates too."""
    reset(profile)
    with images.build_lock():
        for generated in (REPO_ROOT / "build", REPO_ROOT / "template"):
            shutil.rmtree(generated, ignore_errors=True)


def status(profile: Profile) -> int:
    """Print each component with pid, address and health; exit status 1 if any is down."""
    down = 0
    print(f"{'component':<12} {'pid':>8}  {'health':<9} address")
    for component in components(profile):
        pid = component.pid()
        health = "up" if pid and component.healthy() else ("unhealthy" if pid else "down")
        down += health != "up"
        print(f"{component.name:<12} {pid or '-':>8}  {health:<9} {component.address()}")
    mode = (
        "of-watchdog"
        if toolchain.bin_path("of-watchdog").exists()
        else "direct: the provider's proxy does the watchdog's work"
    )
    print(f"\nreplica runtime: {mode}")
    print_functions(profile)
    return 1 if down else 0


def print_functions(profile: Profile) -> None:
    """Each function: replicas (desired/available), requests in flight now, and the
    autoscaler's last decision (or why it holds)."""
    inflight: dict[str, int] = {}
    try:
        url = f"http://127.0.0.1:{profile.ports.provider_ops}/replicas"
        for replica in requests.get(url, timeout=2).json():
            fn = replica["function"]
            inflight[fn] = inflight.get(fn, 0) + replica["inflight"]
    except (requests.RequestException, ValueError, KeyError):
        pass
    scaling = Autoscaler(profile).status()
    try:
        deployed = {f["name"]: f for f in _system(profile, "GET", "/system/functions")}
    except (requests.RequestException, ValueError):
        deployed = {}
    declared = [fn.name for stack in STACKS for fn in images.read_stack(stack)]
    names = declared + sorted(set(deployed) - set(declared))  # test functions, say
    only = profile.autoscaling.only_prefix
    print(f"\n{'function':<20} {'replicas':>8} {'available':>9} {'in flight':>9}  autoscaler")
    for name in names:
        s = deployed.get(name) or function_status(profile, name) or {}
        note = describe_scaling(scaling.get(name))
        if only and not name.startswith(only):
            note = f"not managed here (this profile autoscales only {only}*)"
        print(
            f"{name:<20} {s.get('replicas', '-'):>8} {s.get('availableReplicas', '-'):>9}"
            f" {inflight.get(name, '-'):>9}  {note}"
        )


def describe_scaling(state: dict | None) -> str:
    """`rps 12.3 (target 50/replica, 1..5), on-target; last: 1->3 load-above-target at ...`."""
    if not state:
        return "not autoscaled"
    zero = ", zero" if state.get("zero") else ""
    text = (
        f"{state['type']} {state['load']:.1f} (target {state['target']:g}/replica,"
        f" {state['min']}..{state['max']}{zero}), {state['reason']}"
    )
    last = state.get("lastDecision")
    if last:
        at = last["at"][11:19]
        text += f"; last: {last['from']}->{last['to']} {last['reason']} at {at} UTC"
        if last.get("error"):
            text += f" (failed: {last['error']})"
    return text


def _run(argv: list[str], env: dict[str, str], stdin: str | None = None) -> None:
    result = subprocess.run(
        argv, env=env, input=stdin, capture_output=True, text=True, cwd=REPO_ROOT
    )
    if result.returncode != 0:
        raise SystemExit(f"FAILED: {' '.join(argv[:3])}: {result.stdout}{result.stderr}")


def run_tests(profile: Profile, pytest_args: list[str]) -> int:
    """`make test`: a fresh test platform in its own namespace, pytest, then tear-down."""
    if profile.host_netns is None:
        raise SystemExit("tests run only on a profile with its own host namespace")
    # A crashed earlier run may have left processes or state behind. build/ stays: another
    # test instance may be building from it right now.
    reset(profile)
    network.remove_host_netns(profile)
    build(profile)
    network.ensure_host_netns(profile)
    me = [sys.executable, "-m", "localplatform", "--profile", profile.name]
    try:
        subprocess.run(network.in_host_netns(profile, [*me, "start"]), check=True)
        env = {
            **os.environ,
            **profile.host_env(),
            "ADS_PROFILE": profile.name,
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(Path(__file__).parents[1])]),
        }
        pytest = [sys.executable, "-m", "pytest", *pytest_args]
        code = subprocess.run(
            network.in_host_netns(profile, pytest), env=env, cwd=REPO_ROOT
        ).returncode
    except subprocess.CalledProcessError:
        say(f"the test platform did not start; logs in {profile.log_dir}")
        code = 1
    finally:
        subprocess.run(network.in_host_netns(profile, [*me, "stop"]))
        network.remove_host_netns(profile)
    left = leftovers(profile)
    if left:
        say(f"FAILED: the test platform left behind: {', '.join(left)}")
        return code or 1
    return code


def leftovers(profile: Profile) -> list[str]:
    """Processes, namespaces and links of a profile still there after `stop`."""
    left = [f"process {c.name} ({c.pid()})" for c in components(profile) if c.running()]
    left += [f"netns {ns}" for ns in network.our_namespaces(profile)]
    left += [f"link {link}" for link in network.our_links(profile)]
    if profile.host_netns and network.host_netns_path(profile).exists():
        left.append(f"netns {profile.host_netns}")
    return left
