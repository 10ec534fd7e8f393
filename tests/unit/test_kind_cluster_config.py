"""infra/kind/cluster_config.py: kind-cluster.yaml with the settings' host ports and, for a node
image built here, that image on every node and kind's own CNI off."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "cluster_config", REPO_ROOT / "infra" / "kind" / "cluster_config.py"
)
assert _spec is not None and _spec.loader is not None
cluster_config = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cluster_config)

PORTS = {"gateway_port": 31112, "prometheus_port": 31090, "grafana_port": 31300}


def _source() -> dict:
    return yaml.safe_load((REPO_ROOT / "kind-cluster.yaml").read_text())


def test_published_image_keeps_kindnet_and_moves_only_the_host_ports() -> None:
    config = cluster_config.cluster_config(_source(), PORTS, None)
    (control_plane,) = [n for n in config["nodes"] if n["role"] == "control-plane"]
    assert {m["containerPort"]: m["hostPort"] for m in control_plane["extraPortMappings"]} == {
        31112: 31112,
        31090: 31090,
        31300: 31300,
    }
    assert all(m["listenAddress"] == "127.0.0.1" for m in control_plane["extraPortMappings"])
    assert {n["image"] for n in config["nodes"]} == {_source()["nodes"][0]["image"]}
    assert config["networking"]["disableDefaultCNI"] is False


def test_local_node_image_goes_on_every_node_with_the_default_cni_off() -> None:
    config = cluster_config.cluster_config(_source(), PORTS, "ads-local/kind-node:v1.34.2")
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker"]
    assert {n["image"] for n in config["nodes"]} == {"ads-local/kind-node:v1.34.2"}
    assert config["networking"]["disableDefaultCNI"] is True
