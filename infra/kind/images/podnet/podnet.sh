#!/usr/bin/env bash
# What kindnetd does on a small cluster, as a loop on every node (host network, privileged):
# - the node's CNI config: ptp interfaces with addresses from the node's podCIDR, so every pod
#   packet is routed through the node (and its iptables, where kube-proxy's rules are);
# - a route to each other node's podCIDR via that node's address;
# - masquerade for pod traffic leaving the cluster's pod range.
# Re-applied every PODNET_INTERVAL_S seconds, so a node that restarts or joins is routed again.
set -euo pipefail
: "${NODE_NAME:?NODE_NAME must be set (the downward API gives it)}"
: "${POD_SUBNET:?POD_SUBNET must be set (the cluster pod range, e.g. 10.244.0.0/16)}"
interval="${PODNET_INTERVAL_S:-10}"
cni_dir="${CNI_CONF_DIR:-/etc/cni/net.d}"

# The node's iptables flavour: the one where the kubelet made its KUBE-IPTABLES-HINT chain (as
# kube-proxy's image decides, images/kube-proxy/iptables-wrapper).
iptables=iptables-nft
if iptables-legacy-save -t mangle 2>/dev/null | grep -q -e KUBE-IPTABLES-HINT -e KUBE-KUBELET-CANARY; then
    iptables=iptables-legacy
fi

write_cni_config() {
    local cidr="$1" file="$cni_dir/10-podnet.conflist" config
    config="$(cat <<JSON
{
  "cniVersion": "0.4.0",
  "name": "podnet",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "mtu": 1500,
      "ipam": {
        "type": "host-local",
        "dataDir": "/run/cni-ipam-state",
        "routes": [{"dst": "0.0.0.0/0"}],
        "ranges": [[{"subnet": "$cidr"}]]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
)"
    if [[ ! -f "$file" || "$(cat "$file")" != "$config" ]]; then
        echo "$config" >"$file.tmp" && mv "$file.tmp" "$file"
        echo "podnet: $NODE_NAME pods get addresses from $cidr"
    fi
}

masquerade() {
    local cidr="$1"
    $iptables -t nat -N PODNET-MASQ 2>/dev/null || true
    $iptables -t nat -C POSTROUTING -j PODNET-MASQ 2>/dev/null || $iptables -t nat -A POSTROUTING -j PODNET-MASQ
    $iptables -t nat -C PODNET-MASQ -s "$cidr" ! -d "$POD_SUBNET" -j MASQUERADE 2>/dev/null \
        || $iptables -t nat -A PODNET-MASQ -s "$cidr" ! -d "$POD_SUBNET" -j MASQUERADE
}

while true; do
    nodes="$(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} {.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')" || nodes=""
    while read -r name cidr address; do
        [[ -n "$name" && -n "$cidr" && -n "$address" ]] || continue
        if [[ "$name" == "$NODE_NAME" ]]; then
            write_cni_config "$cidr"
            masquerade "$cidr"
        elif [[ "$(ip route show "$cidr")" != *"via $address "* ]]; then
            ip route replace "$cidr" via "$address"
            echo "podnet: $cidr via $name ($address)"
        fi
    done <<<"$nodes"
    sleep "$interval"
done
