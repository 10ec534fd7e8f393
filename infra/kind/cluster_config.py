"""kind-cluster.yaml as `kind create cluster` gets it: the host ports of the settings and, where
the node image was built here, that image on every node and our pod network instead of kindnet.

    python infra/kind/cluster_config.py --gateway-port 31112 [--node-image IMAGE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# kind-cluster.yaml's container ports (the NodePorts) and the option that moves each host port.
HOST_PORTS = {31112: "gateway_port", 31090: "prometheus_port", 31300: "grafana_port"}


def cluster_config(source: dict, ports: dict[str, int], node_image: str | None) -> dict:
    """The config with its host ports moved and, given a local node image, that image on each
    node and kind's default CNI off (kindnetd's image is not among those built here)."""
    for node in source["nodes"]:
        for mapping in node.get("extraPortMappings", []):
            option = HOST_PORTS.get(mapping["containerPort"])
            if option is not None:
                mapping["hostPort"] = ports[option]
        if node_image:
            node["image"] = node_image
    if node_image:
        source.setdefault("networking", {})["disableDefaultCNI"] = True
    return source


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO_ROOT / "kind-cluster.yaml")
    parser.add_argument("--gateway-port", type=int, default=8080)
    parser.add_argument("--prometheus-port", type=int, default=9090)
    parser.add_argument("--grafana-port", type=int, default=3000)
    parser.add_argument("--node-image", default=None)
    parser.add_argument("--published-image", action="store_true", help="print the image and exit")
    args = parser.parse_args(argv)
    source = yaml.safe_load(args.source.read_text())
    if args.published_image:
        print(source["nodes"][0]["image"])
        return
    ports = {option: getattr(args, option) for option in HOST_PORTS.values()}
    yaml.safe_dump(cluster_config(source, ports, args.node_image), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main(sys.argv[1:])
