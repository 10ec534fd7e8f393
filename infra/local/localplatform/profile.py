"""Where one instance of the local platform lives: its directories, bridge and addresses.

Two profiles exist. `dev` is what `make up` starts: services on 127.0.0.1 of this machine.
`test` is what `make test` starts: the same services, but inside a network namespace of their
own (`adtest`), with their own state directory, bridge and replica-namespace prefix. Inside
that namespace every port is the same as in `dev` (the gateway's 8080 and 8082 and the
watchdog's 8081 are hard-coded, so a namespace is the only way to run two platforms at once),
yet nothing the tests start can touch a running `make up`.

A profile is data: whatever the two platforms do differently is a field here, never a test of
the profile's name elsewhere. This module imports nothing else of the platform.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Ports:
    postgres: int = 5432
    redis: int = 6379
    kafka: int = 9092
    kafka_bridge: int = 9094
    kafka_controller: int = 9093
    prometheus: int = 9090
    gateway: int = 8080
    gateway_metrics: int = 8082
    provider: int = 8090
    provider_ops: int = 8091
    # The provider's invocation routes alone, on the bridge: serve calls bid there, not
    # through the gateway (what bid's Service address is on Kubernetes).
    provider_invoke: int = 8092
    connector_health: int = 8095
    autoscaler: int = 8096
    s3: int = 9000  # moto's S3 server (the log-level export's bucket), MinIO's usual port
    # The Redis Cluster's nodes (3 masters, each with a replica), on a profile that runs one.
    redis_cluster: tuple[int, ...] = (7001, 7002, 7003, 7004, 7005, 7006)


@dataclass(frozen=True)
class Autoscaling:
    """How the autoscaler (infra/autoscaler) and the gateway's scale-from-zero behave."""

    # Replicas are removed only after the load has stayed low this long.
    scale_down_window_s: int = 60
    # Functions whose name starts with this; empty: every function with scaling labels.
    only_prefix: str = ""
    # The gateway wakes a function scaled to zero on its next request.
    scale_from_zero: bool = True


@dataclass(frozen=True)
class Profile:
    """Everything that differs between two platforms running on one machine."""

    name: str
    state_dir: Path
    bridge: str
    bridge_cidr: str
    netns_prefix: str
    host_netns: str | None = None
    ports: Ports = Ports()
    max_replicas: int = 5
    autoscaling: Autoscaling = Autoscaling()
    # A Redis Cluster beside the single Redis (components/redis_cluster.py), for the tests that
    # run the Redis side a second time on a cluster.
    redis_cluster: bool = False
    # How often the log-level export runs by itself; 0: only when asked (POST /run).
    export_interval_s: int = 60
    campaigns_writes_per_minute: int = 600  # per API key
    # Our TCF v2 vendor id as the functions see it (TCF_VENDOR_ID, kernel/privacy.py); 0: none,
    # so no GDPR consent names us. Only the tests set one (their consent strings name it).
    tcf_vendor_id: str = "0"
    # Demo campaigns through the campaigns API when its table is empty after a start.
    demo_data: bool = True

    @property
    def bridge_ip(self) -> str:
        """The host's address on the bridge: what function replicas use to reach services."""
        net = ipaddress.ip_network(self.bridge_cidr)
        return str(next(net.hosts()))

    @property
    def bridge_prefixlen(self) -> int:
        return ipaddress.ip_network(self.bridge_cidr).prefixlen

    # Directories under the state directory, one per concern.
    @property
    def bin_dir(self) -> Path:
        return shared_dir() / "bin"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    @property
    def images_dir(self) -> Path:
        return shared_dir() / "images"

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    def service_env(self) -> dict[str, str]:
        """Addresses of the backing services as function replicas see them (bridge side)."""
        ip, p = self.bridge_ip, self.ports
        return {
            "DATABASE_URL": f"postgresql://adserver@{ip}:{p.postgres}/adserver",
            "REDIS_URL": f"redis://{ip}:{p.redis}/0",
            "KAFKA_BROKERS": f"{ip}:{p.kafka_bridge}",
            "GATEWAY_URL": f"http://{ip}:{p.gateway}",
            "BID_URL": f"http://{ip}:{p.provider_invoke}/function/bid",
            # What a user's browser follows: the gateway as published on this machine.
            "CLICK_BASE_URL": f"{self.gateway_url}/function/click",
            "S3_ENDPOINT_URL": self.s3_endpoint_url,
            "EXPORT_INTERVAL_S": str(self.export_interval_s),
            "CAMPAIGNS_WRITES_PER_MINUTE": str(self.campaigns_writes_per_minute),
            "TCF_VENDOR_ID": self.tcf_vendor_id,
        }

    def host_env(self) -> dict[str, str]:
        """Addresses of the backing services as tests and tools on the host see them."""
        p = self.ports
        env = {
            "DATABASE_URL": f"postgresql://adserver@127.0.0.1:{p.postgres}/adserver",
            "REDIS_URL": f"redis://127.0.0.1:{p.redis}/0",
            "KAFKA_BROKERS": f"127.0.0.1:{p.kafka}",
            "GATEWAY_URL": self.gateway_url,
            "PROMETHEUS_URL": f"http://127.0.0.1:{p.prometheus}",
            "S3_ENDPOINT_URL": self.s3_endpoint_url,
        }
        if self.redis_cluster:
            env["REDIS_CLUSTER_URL"] = self.redis_cluster_url()
        return env

    def redis_cluster_url(self, shards: int | None = None) -> str:
        """``redis+cluster://127.0.0.1:7001,...`` (``?shards=N`` to spread keys over N)."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports.redis_cluster)
        return f"redis+cluster://{hosts}" + (f"?shards={shards}" if shards else "")

    @property
    def s3_endpoint_url(self) -> str:
        """moto's S3 server listens on the bridge address, which the host has too."""
        return f"http://{self.bridge_ip}:{self.ports.s3}"

    def ensure_dirs(self) -> None:
        for d in (self.bin_dir, self.run_dir, self.log_dir, self.data_dir, self.images_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def shared_dir() -> Path:
    """Built artifacts (binaries, jars, images) shared by every profile: built once, reused."""
    return Path(os.environ.get("ADS_LOCAL_DIR", REPO_ROOT / ".local"))


DEV = Profile(
    name="dev",
    state_dir=shared_dir() / "dev",
    bridge="ads0",
    bridge_cidr="10.62.0.0/16",
    netns_prefix="ads-",
)


def test_profile(instance: str = "") -> Profile:
    """The test platform; ADS_TEST_INSTANCE=N (1-9) gives a separate one, so that several
    developers or helpers on one machine can each run the suite at the same time."""
    if instance and not (instance.isdigit() and len(instance) == 1 and instance != "0"):
        raise SystemExit(f"ADS_TEST_INSTANCE={instance!r}: expected a digit 1-9")
    n = int(instance or 0)
    return Profile(
        name="test",
        state_dir=shared_dir() / (f"test-{n}" if n else "test"),
        bridge=f"adt{n}" if n else "adt0",
        bridge_cidr=f"10.{63 + n}.0.0/16",
        netns_prefix=f"at{n}-" if n else "adt-",
        host_netns=f"adtest{n}" if n else "adtest",
        # A short window keeps the scaling test short. Only the runtime test's own functions
        # are autoscaled, and no function is woken from zero: other e2e tests scale bid by
        # hand (to 3, and to 0 to prove serve's circuit breaker), which an autoscaler or a
        # wake-up would undo under them.
        autoscaling=Autoscaling(
            scale_down_window_s=15, only_prefix="runtime-test-", scale_from_zero=False
        ),
        redis_cluster=True,
        # The export runs only when a test asks (POST /run): its hours and its bucket then
        # change only under the tests that look at them.
        export_interval_s=0,
        campaigns_writes_per_minute=60,  # a test reaches the limit in a second
        # The tests make their own data.
        demo_data=False,
        # A made-up vendor id, named by the tests' TCF consent strings (tests/unit/tcf_vectors.py).
        tcf_vendor_id="1234",
    )


TEST = test_profile(os.environ.get("ADS_TEST_INSTANCE", ""))

PROFILES = {p.name: p for p in (DEV, TEST)}


def current() -> Profile:
    """The profile named by ADS_PROFILE (default `dev`)."""
    name = os.environ.get("ADS_PROFILE", "dev")
    try:
        return PROFILES[name]
    except KeyError:
        raise SystemExit(f"ADS_PROFILE={name!r}: expected one of {sorted(PROFILES)}") from None
